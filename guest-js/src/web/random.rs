//! Randomness and time for the guest. Entropy comes from the host
//! (WASI `random_get`) in every instance and is never part of the Wizer
//! snapshot: `Math.random`'s generator seeds itself at its first use in an
//! instance, and `crypto.getRandomValues`/`randomUUID` ask the host each time.

use javy::quickjs::{Ctx, Exception, Result, TypedArray};
use std::cell::Cell;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

thread_local! {
    /// xorshift128+ state of `Math.random`; zero until the first use.
    static STATE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// The instance's time origin: its first clock reading.
    static ORIGIN: Cell<Option<(Instant, f64)>> = const { Cell::new(None) };
}

/// Fills `bytes` from the host's entropy.
pub(crate) fn fill(bytes: &mut [u8]) {
    getrandom::getrandom(bytes).expect("the host provides random_get");
}

/// `Math.random()`: xorshift128+ (as V8's), seeded from the host per instance.
pub(super) fn math_random() -> f64 {
    STATE.with(|state| {
        let (mut s0, mut s1) = state.get();
        if s0 == 0 && s1 == 0 {
            let mut seed = [0u8; 16];
            fill(&mut seed);
            s0 = u64::from_le_bytes(seed[..8].try_into().unwrap()) | 1;
            s1 = u64::from_le_bytes(seed[8..].try_into().unwrap());
        }
        let mut x = s0;
        let y = s1;
        s0 = y;
        x ^= x << 23;
        x ^= x >> 17;
        x ^= y ^ (y >> 26);
        s1 = x;
        state.set((s0, s1));
        (s0.wrapping_add(s1) >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// `getRandomValues(view)`: fills a Uint8Array over the caller's array.
pub(super) fn get_random_values(ctx: Ctx<'_>, view: TypedArray<'_, u8>) -> Result<()> {
    let Some(raw) = view.as_raw() else {
        return Err(Exception::throw_type(&ctx, "the array is detached"));
    };
    // SAFETY: `raw` describes the view's bytes, alive while `view` is; no
    // JavaScript runs while they are written.
    let bytes = unsafe { std::slice::from_raw_parts_mut(raw.ptr.as_ptr(), raw.len) };
    fill(bytes);
    Ok(())
}

/// `randomUUID()`: a version 4 UUID.
pub(super) fn random_uuid() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn origin() -> (Instant, f64) {
    ORIGIN.with(|origin| match origin.get() {
        Some(o) => o,
        None => {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0);
            let o = (Instant::now(), wall);
            origin.set(Some(o));
            o
        }
    })
}

/// `now()`: milliseconds since the instance's time origin (monotonic).
pub(super) fn now() -> f64 {
    let (start, _) = origin();
    start.elapsed().as_secs_f64() * 1000.0
}

/// `timeOrigin()`: the time origin as milliseconds since the Unix epoch.
pub(super) fn time_origin() -> f64 {
    origin().1
}
