//! Outbound HTTP for `fetch`, behind an address guard: by default no
//! private, loopback, link-local, multicast, unspecified or metadata
//! address. The guard checks the addresses a name resolves to and the
//! connection goes only to those checked addresses (no DNS-rebinding gap),
//! and every redirect hop is checked again. Decimal, octal and hex IPv4
//! forms are normalized by the URL parser first; IPv4-mapped IPv6 addresses
//! are checked as the IPv4 address they carry.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};
use url::{Host, Url};

/// Operator settings of `fetch`.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Longest a request may take (capped by the call tree's deadline).
    pub timeout: Duration,
    /// Largest response body read.
    pub max_response_bytes: usize,
    /// When not empty, only these hosts (or their subdomains) may be fetched.
    pub allow_hosts: Vec<String>,
    /// These hosts (and their subdomains) may never be fetched.
    pub deny_hosts: Vec<String>,
    /// Allow private, loopback and link-local addresses (tests, internal deployments).
    pub allow_private_addresses: bool,
    /// Most redirects followed.
    pub max_redirects: u32,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            timeout: Duration::from_secs(10),
            max_response_bytes: 4 << 20,
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
            allow_private_addresses: false,
            max_redirects: 5,
        }
    }
}

/// A request as user code made it.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Option<Vec<u8>>,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// HTTP status.
    pub status: u16,
    /// Reason phrase.
    pub status_text: String,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The final URL, after redirects.
    pub url: String,
    /// Whether a redirect was followed.
    pub redirected: bool,
}

/// Why an address may not be fetched, or `None` when it may.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata lives here)")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if a >= 240 || ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Some("a reserved address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.segments()[..6] == [0, 0, 0, 0, 0, 0] {
        Some("an IPv4-compatible address")
    } else if first == 0x64 && ip.segments()[1] == 0xff9b {
        Some("a NAT64 address")
    } else {
        None
    }
}

fn host_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.trim().trim_start_matches('.').to_ascii_lowercase();
    host == pattern || host.ends_with(&format!(".{pattern}"))
}

/// The Fetch Standard's bad ports: services browsers never let a web page
/// talk to (SMTP, SSH, IRC, …); refused before any name is looked up.
const BAD_PORTS: &[u16] = &[
    0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101,
    102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427,
    465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990,
    993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667,
    6668, 6669, 6679, 6697, 10080,
];

/// Checks a URL before connecting (and before any name is looked up):
/// scheme, host lists, literal addresses, port.
fn check_url(policy: &FetchPolicy, url: &Url) -> Result<(), String> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "only http and https URLs can be fetched, not `{}:`",
            url.scheme()
        ));
    }
    let host = match url.host() {
        Some(Host::Domain(domain)) => domain.to_ascii_lowercase(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("the URL has no host".into()),
    };
    if policy.deny_hosts.iter().any(|p| host_matches(&host, p)) {
        return Err(format!("{host} is on the deny list"));
    }
    if !policy.allow_hosts.is_empty() && !policy.allow_hosts.iter().any(|p| host_matches(&host, p))
    {
        return Err(format!("{host} is not on the allow list"));
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let (Some(ip), false) = (literal, policy.allow_private_addresses) {
        if let Some(why) = forbidden_address(ip) {
            return Err(format!("{ip} is {why}"));
        }
    }
    // After the address checks, so a private address says so first.
    if let Some(port) = url.port().filter(|port| BAD_PORTS.contains(port)) {
        return Err(format!(
            "port {port} is blocked (a bad port of the Fetch Standard)"
        ));
    }
    Ok(())
}

/// Resolves names and keeps only addresses the policy allows; the
/// connection is made to what this returns, so what was checked is what is used.
struct GuardedResolver {
    allow_private_addresses: bool,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let addresses: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_private_addresses {
            return Ok(addresses);
        }
        let mut refused = None;
        let allowed: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| match forbidden_address(address.ip()) {
                Some(why) => {
                    refused = Some(format!("{} is {why}", address.ip()));
                    false
                }
                None => true,
            })
            .collect();
        if allowed.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{netloc} resolves to no public address ({})",
                    refused.unwrap_or_else(|| "no addresses".into())
                ),
            ));
        }
        Ok(allowed)
    }
}

const DROPPED_REQUEST_HEADERS: &[&str] =
    &["host", "content-length", "connection", "transfer-encoding"];

/// Performs `request` under `policy`, ending by `deadline` at the latest.
pub fn fetch(
    policy: &FetchPolicy,
    request: FetchRequest,
    deadline: Instant,
) -> Result<FetchResponse, String> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let timeout = policy.timeout.min(remaining);
    if timeout.is_zero() {
        return Err("no time left before the deadline".into());
    }
    let agent = ureq::AgentBuilder::new()
        .resolver(GuardedResolver {
            allow_private_addresses: policy.allow_private_addresses,
        })
        .redirects(0)
        .timeout(timeout)
        .build();
    let mut url = Url::parse(&request.url)
        .map_err(|e| format!("`{}` is not a valid URL: {e}", request.url))?;
    let mut method = request.method.to_ascii_uppercase();
    let mut body = request.body;
    let mut redirected = false;
    for _ in 0..=policy.max_redirects {
        check_url(policy, &url)?;
        let mut call = agent.request_url(&method, &url);
        for (name, value) in &request.headers {
            if !DROPPED_REQUEST_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                call = call.set(name, value);
            }
        }
        let result = match &body {
            Some(bytes) => call.send_bytes(bytes),
            None => call.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => return Err(describe_transport(&transport)),
        };
        let status = response.status();
        if (300..400).contains(&status) && status != 304 {
            if let Some(location) = response.header("location") {
                url = url
                    .join(location)
                    .map_err(|e| format!("bad redirect location `{location}`: {e}"))?;
                redirected = true;
                if status == 303 || ((status == 301 || status == 302) && method == "POST") {
                    method = "GET".into();
                    body = None;
                }
                continue;
            }
        }
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                response
                    .header(&name)
                    .map(|v| (name.to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        let status_text = response.status_text().to_string();
        let final_url = response.get_url().to_string();
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(policy.max_response_bytes as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading the response failed: {e}"))?;
        if bytes.len() > policy.max_response_bytes {
            return Err(format!(
                "the response is larger than the limit of {} bytes",
                policy.max_response_bytes
            ));
        }
        return Ok(FetchResponse {
            status,
            status_text,
            headers,
            body: bytes,
            url: final_url,
            redirected,
        });
    }
    Err(format!("more than {} redirects", policy.max_redirects))
}

fn describe_transport(transport: &ureq::Transport) -> String {
    let mut message = transport.to_string();
    let mut source = std::error::Error::source(transport);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_forbidden() {
        for address in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "ff02::1",
        ] {
            assert!(
                forbidden_address(ip(address)).is_some(),
                "{address} must be forbidden"
            );
        }
        for address in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(
                forbidden_address(ip(address)).is_none(),
                "{address} is public"
            );
        }
    }

    #[test]
    fn decimal_octal_and_hex_forms_are_normalized_and_refused() {
        let policy = FetchPolicy::default();
        for url in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://127.1/",
            "http://[::ffff:7f00:1]/",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let parsed = Url::parse(url).unwrap();
            assert!(
                check_url(&policy, &parsed).is_err(),
                "{url} must be refused"
            );
        }
    }

    #[test]
    fn allow_and_deny_lists_match_hosts_and_subdomains() {
        let policy = FetchPolicy {
            allow_hosts: vec!["example.com".into()],
            deny_hosts: vec!["bad.example.com".into()],
            ..FetchPolicy::default()
        };
        let check = |url: &str| check_url(&policy, &Url::parse(url).unwrap());
        assert!(check("https://example.com/").is_ok());
        assert!(check("https://api.example.com/").is_ok());
        assert!(check("https://bad.example.com/").is_err());
        assert!(check("https://x.bad.example.com/").is_err());
        assert!(check("https://example.org/").is_err());
        assert!(check("ftp://example.com/").is_err());
    }

    #[test]
    fn bad_ports_are_refused_before_any_lookup() {
        let policy = FetchPolicy {
            allow_hosts: vec!["example.com".into()],
            ..FetchPolicy::default()
        };
        let check = |url: &str| check_url(&policy, &Url::parse(url).unwrap());
        for url in [
            "http://example.com:25/",
            "https://example.com:6667/",
            "http://example.com:0/",
        ] {
            let refused = check(url).unwrap_err();
            assert!(refused.contains("bad port"), "{url}: {refused}");
        }
        for url in [
            "http://example.com:80/",
            "https://example.com:8443/",
            "http://example.com/",
        ] {
            assert!(check(url).is_ok(), "{url}");
        }
        // A private address on a bad port is refused for its address.
        let guarded = check_url(
            &FetchPolicy::default(),
            &Url::parse("http://127.0.0.1:25/").unwrap(),
        )
        .unwrap_err();
        assert!(!guarded.contains("bad port"), "{guarded}");
    }
}
