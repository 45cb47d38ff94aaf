//! Natives of `crypto.js` (WebCrypto's `crypto.subtle`), on pure-Rust
//! RustCrypto crates. Keys cross as bytes: secret keys raw, private keys
//! PKCS #8 DER and public keys SPKI DER; `crypto.js` does the rest of the
//! standard (algorithm normalization, usages, JWK, errors). A native
//! throws `Error("<DOMException name>: <message>")` and `crypto.js` turns
//! that into the DOMException.

use super::random::fill;
use javy::quickjs::{Ctx, Exception, Function, Object, Result, TypedArray};
use sha2::Digest;

type Bytes<'js> = TypedArray<'js, u8>;

/// Entropy from the host for key generation and PSS salts.
struct HostRng;

impl rand_core::RngCore for HostRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        fill(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        fill(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for HostRng {}

fn bytes<'a>(array: &'a Bytes<'_>) -> &'a [u8] {
    array.as_bytes().unwrap_or_default()
}

fn out<'js>(ctx: &Ctx<'js>, data: Vec<u8>) -> Result<Bytes<'js>> {
    TypedArray::new(ctx.clone(), data)
}

fn fail(ctx: &Ctx<'_>, name: &str, message: impl std::fmt::Display) -> javy::quickjs::Error {
    Exception::throw_message(ctx, &format!("{name}: {message}"))
}

fn operation(ctx: &Ctx<'_>, message: impl std::fmt::Display) -> javy::quickjs::Error {
    fail(ctx, "OperationError", message)
}

fn not_supported(ctx: &Ctx<'_>, message: impl std::fmt::Display) -> javy::quickjs::Error {
    fail(ctx, "NotSupportedError", message)
}

fn data_error(ctx: &Ctx<'_>, message: impl std::fmt::Display) -> javy::quickjs::Error {
    fail(ctx, "DataError", message)
}

/// Runs `$body` with `$D` bound to the digest type a WebCrypto hash names.
macro_rules! with_hash {
    ($ctx:expr, $hash:expr, $D:ident => $body:expr) => {
        match $hash {
            "SHA-1" => {
                type $D = sha1::Sha1;
                $body
            }
            "SHA-256" => {
                type $D = sha2::Sha256;
                $body
            }
            "SHA-384" => {
                type $D = sha2::Sha384;
                $body
            }
            "SHA-512" => {
                type $D = sha2::Sha512;
                $body
            }
            other => return Err(not_supported($ctx, format!("unknown hash {other}"))),
        }
    };
}

fn hash(ctx: &Ctx<'_>, name: &str, data: &[u8]) -> Result<Vec<u8>> {
    Ok(with_hash!(ctx, name, D => D::digest(data).to_vec()))
}

fn digest<'js>(ctx: Ctx<'js>, name: String, data: Bytes<'js>) -> Result<Bytes<'js>> {
    let d = hash(&ctx, &name, bytes(&data))?;
    out(&ctx, d)
}

fn hmac_sign<'js>(
    ctx: Ctx<'js>,
    hash: String,
    key: Bytes<'js>,
    data: Bytes<'js>,
) -> Result<Bytes<'js>> {
    use hmac::Mac;
    let tag = with_hash!(&ctx, hash.as_str(), D => {
        let mut mac = hmac::Hmac::<D>::new_from_slice(bytes(&key)).map_err(|e| operation(&ctx, e))?;
        mac.update(bytes(&data));
        mac.finalize().into_bytes().to_vec()
    });
    out(&ctx, tag)
}

fn hmac_verify<'js>(
    ctx: Ctx<'js>,
    hash: String,
    key: Bytes<'js>,
    signature: Bytes<'js>,
    data: Bytes<'js>,
) -> Result<bool> {
    use hmac::Mac;
    Ok(with_hash!(&ctx, hash.as_str(), D => {
        let mut mac = hmac::Hmac::<D>::new_from_slice(bytes(&key)).map_err(|e| operation(&ctx, e))?;
        mac.update(bytes(&data));
        mac.verify_slice(bytes(&signature)).is_ok()
    }))
}

/// `aesGcm(encrypt, key, iv, data, aad, tagBytes)`: AES-GCM with a tag of
/// `tagBytes` (4 to 16). A shorter tag is the full tag cut short; to check
/// one, the plaintext is recovered with the key stream and encrypted again,
/// which gives the full tag of the ciphertext.
#[allow(clippy::too_many_arguments)]
fn aes_gcm<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    key: Bytes<'js>,
    iv: Bytes<'js>,
    data: Bytes<'js>,
    aad: Bytes<'js>,
    tag_bytes: u32,
) -> Result<Bytes<'js>> {
    use aes_gcm::aead::consts::{U12, U16};
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aes_gcm::AesGcm;
    let tag_bytes = tag_bytes as usize;
    if !(4..=16).contains(&tag_bytes) {
        return Err(operation(&ctx, "the AES-GCM tag length is not supported"));
    }
    let decrypt_failed = || {
        operation(
            &ctx,
            "the data could not be decrypted (wrong key, iv, data or tag)",
        )
    };
    let data = bytes(&data);
    if !encrypt && data.len() < tag_bytes {
        return Err(decrypt_failed());
    }
    macro_rules! run {
        ($cipher:ty, $nonce:ty) => {{
            let cipher = AesGcm::<$cipher, $nonce>::new_from_slice(bytes(&key))
                .map_err(|e| data_error(&ctx, e))?;
            let nonce = aes_gcm::aead::generic_array::GenericArray::from_slice(bytes(&iv));
            let aad = bytes(&aad);
            let seal = |buffer: &mut Vec<u8>| {
                cipher
                    .encrypt_in_place_detached(nonce, aad, buffer)
                    .map(|tag| tag.to_vec())
                    .map_err(|_| operation(&ctx, "AES-GCM failed"))
            };
            if encrypt {
                let mut buffer = data.to_vec();
                let tag = seal(&mut buffer)?;
                buffer.extend_from_slice(&tag[..tag_bytes]);
                buffer
            } else {
                let (ciphertext, tag) = data.split_at(data.len() - tag_bytes);
                let mut plaintext = ciphertext.to_vec();
                seal(&mut plaintext)?;
                let mut again = plaintext.clone();
                let full = seal(&mut again)?;
                let difference = full[..tag_bytes]
                    .iter()
                    .zip(tag)
                    .fold(0u8, |d, (a, b)| d | (a ^ b));
                if difference != 0 {
                    return Err(decrypt_failed());
                }
                plaintext
            }
        }};
    }
    macro_rules! by_key {
        ($nonce:ty) => {
            match bytes(&key).len() {
                16 => run!(aes::Aes128, $nonce),
                24 => run!(aes::Aes192, $nonce),
                32 => run!(aes::Aes256, $nonce),
                _ => return Err(data_error(&ctx, "AES keys are 128, 192 or 256 bits")),
            }
        };
    }
    let result = match bytes(&iv).len() {
        12 => by_key!(U12),
        16 => by_key!(U16),
        n => {
            return Err(not_supported(
                &ctx,
                format!("AES-GCM with a {n}-byte iv (12 or 16 are supported)"),
            ))
        }
    };
    out(&ctx, result)
}

fn aes_cbc<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    key: Bytes<'js>,
    iv: Bytes<'js>,
    data: Bytes<'js>,
) -> Result<Bytes<'js>> {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
    if bytes(&iv).len() != 16 {
        return Err(operation(&ctx, "the AES-CBC iv must be 16 bytes"));
    }
    macro_rules! run {
        ($cipher:ty) => {{
            if encrypt {
                let c = cbc::Encryptor::<$cipher>::new_from_slices(bytes(&key), bytes(&iv))
                    .map_err(|e| data_error(&ctx, e))?;
                Ok(c.encrypt_padded_vec_mut::<Pkcs7>(bytes(&data)))
            } else {
                let c = cbc::Decryptor::<$cipher>::new_from_slices(bytes(&key), bytes(&iv))
                    .map_err(|e| data_error(&ctx, e))?;
                c.decrypt_padded_vec_mut::<Pkcs7>(bytes(&data))
            }
        }};
    }
    let result = match bytes(&key).len() {
        16 => run!(aes::Aes128),
        24 => run!(aes::Aes192),
        32 => run!(aes::Aes256),
        _ => return Err(data_error(&ctx, "AES keys are 128, 192 or 256 bits")),
    };
    let result =
        result.map_err(|_| operation(&ctx, "the data could not be decrypted (bad padding)"))?;
    out(&ctx, result)
}

/// `aesCtr(key, counter, length, data)`: AES-CTR where the rightmost
/// `length` bits of the 16-byte counter block count (and wrap); the same
/// for encryption and decryption. Data that would reuse a counter value is
/// refused, as the standard says.
fn aes_ctr<'js>(
    ctx: Ctx<'js>,
    key: Bytes<'js>,
    counter: Bytes<'js>,
    length: u32,
    data: Bytes<'js>,
) -> Result<Bytes<'js>> {
    use aes::cipher::{BlockEncrypt, KeyInit};
    let counter: [u8; 16] = bytes(&counter)
        .try_into()
        .map_err(|_| operation(&ctx, "the AES-CTR counter must be 16 bytes"))?;
    if !(1..=128).contains(&length) {
        return Err(operation(&ctx, "the AES-CTR length must be 1 to 128 bits"));
    }
    let data = bytes(&data);
    let blocks = data.len().div_ceil(16) as u128;
    if length < 128 && blocks > 1u128 << length {
        return Err(operation(
            &ctx,
            "the data is too long for the AES-CTR counter length",
        ));
    }
    let mask = if length == 128 {
        u128::MAX
    } else {
        (1u128 << length) - 1
    };
    let mut block = u128::from_be_bytes(counter);
    let mut output = Vec::with_capacity(data.len());
    macro_rules! run {
        ($cipher:ty) => {{
            let cipher = <$cipher>::new_from_slice(bytes(&key)).map_err(|e| data_error(&ctx, e))?;
            for chunk in data.chunks(16) {
                let mut stream = aes::Block::from(block.to_be_bytes());
                cipher.encrypt_block(&mut stream);
                output.extend(chunk.iter().zip(stream.iter()).map(|(a, b)| a ^ b));
                block = (block & !mask) | (block.wrapping_add(1) & mask);
            }
        }};
    }
    match bytes(&key).len() {
        16 => run!(aes::Aes128),
        24 => run!(aes::Aes192),
        32 => run!(aes::Aes256),
        _ => return Err(data_error(&ctx, "AES keys are 128, 192 or 256 bits")),
    }
    out(&ctx, output)
}

/// `aesKw(wrap, key, data)`: AES Key Wrap (RFC 3394).
fn aes_kw<'js>(ctx: Ctx<'js>, wrap: bool, key: Bytes<'js>, data: Bytes<'js>) -> Result<Bytes<'js>> {
    macro_rules! run {
        ($kek:ty) => {{
            let kek = <$kek>::try_from(bytes(&key)).map_err(|e| data_error(&ctx, e))?;
            if wrap {
                kek.wrap_vec(bytes(&data))
            } else {
                kek.unwrap_vec(bytes(&data))
            }
        }};
    }
    let result = match bytes(&key).len() {
        16 => run!(aes_kw::KekAes128),
        24 => run!(aes_kw::KekAes192),
        32 => run!(aes_kw::KekAes256),
        _ => return Err(data_error(&ctx, "AES keys are 128, 192 or 256 bits")),
    };
    out(
        &ctx,
        result.map_err(|e| operation(&ctx, format!("AES-KW: {e}")))?,
    )
}

fn pbkdf2<'js>(
    ctx: Ctx<'js>,
    hash: String,
    password: Bytes<'js>,
    salt: Bytes<'js>,
    iterations: u32,
    bits: u32,
) -> Result<Bytes<'js>> {
    let mut okm = vec![0u8; (bits / 8) as usize];
    with_hash!(&ctx, hash.as_str(), D => pbkdf2::pbkdf2_hmac::<D>(bytes(&password), bytes(&salt), iterations, &mut okm));
    out(&ctx, okm)
}

fn hkdf<'js>(
    ctx: Ctx<'js>,
    hash: String,
    ikm: Bytes<'js>,
    salt: Bytes<'js>,
    info: Bytes<'js>,
    bits: u32,
) -> Result<Bytes<'js>> {
    let mut okm = vec![0u8; (bits / 8) as usize];
    with_hash!(&ctx, hash.as_str(), D => hkdf::Hkdf::<D>::new(Some(bytes(&salt)), bytes(&ikm))
        .expand(bytes(&info), &mut okm)
        .map_err(|_| operation(&ctx, "HKDF cannot derive that many bits"))?);
    out(&ctx, okm)
}

// ---- ECDSA (P-256, P-384) -------------------------------------------------------

/// Runs `$body` with `$C` bound to the curve type a WebCrypto curve names.
macro_rules! with_curve {
    ($ctx:expr, $curve:expr, $C:ident => $body:expr) => {
        match $curve {
            "P-256" => {
                use p256 as $C;
                $body
            }
            "P-384" => {
                use p384 as $C;
                $body
            }
            "P-521" => {
                use p521 as $C;
                $body
            }
            other => return Err(not_supported($ctx, format!("unsupported curve {other}"))),
        }
    };
}

/// A digest shorter than the curve's field, left-padded with zeros: the
/// same integer (as ECDSA reads it), which the ecdsa crate only accepts
/// when it is at least half the field's size.
fn field_sized(digest: Vec<u8>, field: usize) -> Vec<u8> {
    if digest.len() >= field {
        return digest;
    }
    let mut padded = vec![0u8; field - digest.len()];
    padded.extend_from_slice(&digest);
    padded
}

fn ec_generate<'js>(ctx: Ctx<'js>, curve: String) -> Result<Vec<Bytes<'js>>> {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let (private, public) = with_curve!(&ctx, curve.as_str(), C => {
        let secret = C::SecretKey::random(&mut HostRng);
        (secret.to_pkcs8_der().map_err(|e| operation(&ctx, e))?.as_bytes().to_vec(),
         secret.public_key().to_public_key_der().map_err(|e| operation(&ctx, e))?.as_bytes().to_vec())
    });
    Ok(vec![out(&ctx, private)?, out(&ctx, public)?])
}

fn ec_sign<'js>(
    ctx: Ctx<'js>,
    curve: String,
    hash_name: String,
    pkcs8: Bytes<'js>,
    data: Bytes<'js>,
) -> Result<Bytes<'js>> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::pkcs8::DecodePrivateKey;
    let digest = hash(&ctx, &hash_name, bytes(&data))?;
    let signature = with_curve!(&ctx, curve.as_str(), C => {
        let prehash = field_sized(digest, C::FieldBytes::default().len());
        let secret = C::SecretKey::from_pkcs8_der(bytes(&pkcs8)).map_err(|e| data_error(&ctx, e))?;
        let key = C::ecdsa::SigningKey::from_slice(&secret.to_bytes()).map_err(|e| data_error(&ctx, e))?;
        let sig: C::ecdsa::Signature = key.sign_prehash(&prehash).map_err(|e| operation(&ctx, e))?;
        sig.to_bytes().to_vec()
    });
    out(&ctx, signature)
}

fn ec_verify<'js>(
    ctx: Ctx<'js>,
    curve: String,
    hash_name: String,
    spki: Bytes<'js>,
    signature: Bytes<'js>,
    data: Bytes<'js>,
) -> Result<bool> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::DecodePublicKey;
    let digest = hash(&ctx, &hash_name, bytes(&data))?;
    Ok(with_curve!(&ctx, curve.as_str(), C => {
        let prehash = field_sized(digest.clone(), C::FieldBytes::default().len());
        let public = C::PublicKey::from_public_key_der(bytes(&spki)).map_err(|e| data_error(&ctx, e))?;
        let key = C::ecdsa::VerifyingKey::from_sec1_bytes(public.to_encoded_point(false).as_bytes()).map_err(|e| data_error(&ctx, e))?;
        match C::ecdsa::Signature::from_slice(bytes(&signature)) {
            Ok(sig) => key.verify_prehash(&prehash, &sig).is_ok(),
            Err(_) => false,
        }
    }))
}

/// `ecImport(curve, format, data, private)`: the key as PKCS #8 (private)
/// or SPKI (public) DER, checked. Formats: `raw` (SEC1 point), `spki`,
/// `pkcs8`, `jwk` (data: `[d or empty, x, y]` bytes).
fn ec_import<'js>(
    ctx: Ctx<'js>,
    curve: String,
    format: String,
    data: Vec<Bytes<'js>>,
    private: bool,
) -> Result<Bytes<'js>> {
    use p256::elliptic_curve::sec1::FromEncodedPoint;
    use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
    let first = data.first().map(bytes).unwrap_or_default();
    let der = with_curve!(&ctx, curve.as_str(), C => {
        let bad = |e: &dyn std::fmt::Display| data_error(&ctx, format!("not a {curve} key: {e}"));
        match (format.as_str(), private) {
            ("pkcs8", true) => C::SecretKey::from_pkcs8_der(first).map_err(|e| bad(&e))?.to_pkcs8_der().map_err(|e| bad(&e))?.as_bytes().to_vec(),
            ("spki", false) => C::PublicKey::from_public_key_der(first).map_err(|e| bad(&e))?.to_public_key_der().map_err(|e| bad(&e))?.as_bytes().to_vec(),
            ("raw", false) => C::PublicKey::from_sec1_bytes(first).map_err(|e| bad(&e))?.to_public_key_der().map_err(|e| bad(&e))?.as_bytes().to_vec(),
            ("jwk", _) => {
                let [d, x, y] = data.as_slice() else { return Err(bad(&"missing coordinates")) };
                let point = C::EncodedPoint::from_affine_coordinates(
                    C::FieldBytes::from_exact_iter(bytes(x).iter().copied()).ok_or_else(|| bad(&"bad x"))?.as_slice().into(),
                    C::FieldBytes::from_exact_iter(bytes(y).iter().copied()).ok_or_else(|| bad(&"bad y"))?.as_slice().into(),
                    false,
                );
                let public: Option<C::PublicKey> = C::PublicKey::from_encoded_point(&point).into();
                let public = public.ok_or_else(|| bad(&"the point is not on the curve"))?;
                if private {
                    let secret = C::SecretKey::from_slice(bytes(d)).map_err(|e| bad(&e))?;
                    if secret.public_key() != public {
                        return Err(bad(&"d does not match x and y"));
                    }
                    secret.to_pkcs8_der().map_err(|e| bad(&e))?.as_bytes().to_vec()
                } else {
                    public.to_public_key_der().map_err(|e| bad(&e))?.as_bytes().to_vec()
                }
            }
            _ => return Err(not_supported(&ctx, format!("cannot import an EC key as {format}"))),
        }
    });
    out(&ctx, der)
}

/// `ecParts(curve, der, private)`: `[d or empty, x, y, spki, raw point]`.
fn ec_parts<'js>(
    ctx: Ctx<'js>,
    curve: String,
    der: Bytes<'js>,
    private: bool,
) -> Result<Vec<Bytes<'js>>> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
    let parts: Vec<Vec<u8>> = with_curve!(&ctx, curve.as_str(), C => {
        let (d, public) = if private {
            let secret = C::SecretKey::from_pkcs8_der(bytes(&der)).map_err(|e| data_error(&ctx, e))?;
            (secret.to_bytes().to_vec(), secret.public_key())
        } else {
            (Vec::new(), C::PublicKey::from_public_key_der(bytes(&der)).map_err(|e| data_error(&ctx, e))?)
        };
        let point = public.to_encoded_point(false);
        vec![d, point.x().map(|x| x.to_vec()).unwrap_or_default(), point.y().map(|y| y.to_vec()).unwrap_or_default(),
             public.to_public_key_der().map_err(|e| operation(&ctx, e))?.as_bytes().to_vec(), point.as_bytes().to_vec()]
    });
    parts.into_iter().map(|p| out(&ctx, p)).collect()
}

/// `ecdhDerive(curve, pkcs8, spki)`: the shared secret (the x coordinate).
fn ecdh_derive<'js>(
    ctx: Ctx<'js>,
    curve: String,
    pkcs8: Bytes<'js>,
    spki: Bytes<'js>,
) -> Result<Bytes<'js>> {
    use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
    let secret = with_curve!(&ctx, curve.as_str(), C => {
        let secret = C::SecretKey::from_pkcs8_der(bytes(&pkcs8)).map_err(|e| data_error(&ctx, e))?;
        let public = C::PublicKey::from_public_key_der(bytes(&spki)).map_err(|e| data_error(&ctx, e))?;
        C::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine()).raw_secret_bytes().to_vec()
    });
    out(&ctx, secret)
}

// ---- Ed25519 ---------------------------------------------------------------------

fn ed_generate<'js>(ctx: Ctx<'js>) -> Result<Vec<Bytes<'js>>> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let key = ed25519_dalek::SigningKey::generate(&mut HostRng);
    let private = key
        .to_pkcs8_der()
        .map_err(|e| operation(&ctx, e))?
        .as_bytes()
        .to_vec();
    let public = key
        .verifying_key()
        .to_public_key_der()
        .map_err(|e| operation(&ctx, e))?
        .as_bytes()
        .to_vec();
    Ok(vec![out(&ctx, private)?, out(&ctx, public)?])
}

fn ed_sign<'js>(ctx: Ctx<'js>, pkcs8: Bytes<'js>, data: Bytes<'js>) -> Result<Bytes<'js>> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(bytes(&pkcs8))
        .map_err(|e| data_error(&ctx, e))?;
    out(&ctx, key.sign(bytes(&data)).to_bytes().to_vec())
}

fn ed_verify<'js>(
    ctx: Ctx<'js>,
    spki: Bytes<'js>,
    signature: Bytes<'js>,
    data: Bytes<'js>,
) -> Result<bool> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let key = ed25519_dalek::VerifyingKey::from_public_key_der(bytes(&spki))
        .map_err(|e| data_error(&ctx, e))?;
    let Ok(signature) = ed25519_dalek::Signature::from_slice(bytes(&signature)) else {
        return Ok(false);
    };
    Ok(key.verify_strict(bytes(&data), &signature).is_ok())
}

/// `edImport(format, data, private)`: PKCS #8 or SPKI DER. Formats: `raw`
/// (public, 32 bytes), `spki`, `pkcs8`, `jwk` (data: `[d or empty, x]`).
fn ed_import<'js>(
    ctx: Ctx<'js>,
    format: String,
    data: Vec<Bytes<'js>>,
    private: bool,
) -> Result<Bytes<'js>> {
    use ed25519_dalek::pkcs8::{
        DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey,
    };
    let bad = |e: &dyn std::fmt::Display| data_error(&ctx, format!("not an Ed25519 key: {e}"));
    let first = data.first().map(bytes).unwrap_or_default();
    let public_der = |raw: &[u8]| -> Result<Vec<u8>> {
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad(&"a public key is 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|e| bad(&e))?;
        Ok(key
            .to_public_key_der()
            .map_err(|e| bad(&e))?
            .as_bytes()
            .to_vec())
    };
    let der = match (format.as_str(), private) {
        ("pkcs8", true) => ed25519_dalek::SigningKey::from_pkcs8_der(first)
            .map_err(|e| bad(&e))?
            .to_pkcs8_der()
            .map_err(|e| bad(&e))?
            .as_bytes()
            .to_vec(),
        ("spki", false) => ed25519_dalek::VerifyingKey::from_public_key_der(first)
            .map_err(|e| bad(&e))?
            .to_public_key_der()
            .map_err(|e| bad(&e))?
            .as_bytes()
            .to_vec(),
        ("raw", false) => public_der(first)?,
        ("jwk", false) => public_der(data.get(1).map(bytes).unwrap_or_default())?,
        ("jwk", true) => {
            let seed: [u8; 32] = first.try_into().map_err(|_| bad(&"d is 32 bytes"))?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            if data.get(1).map(bytes) != Some(key.verifying_key().as_bytes().as_slice()) {
                return Err(bad(&"d does not match x"));
            }
            key.to_pkcs8_der().map_err(|e| bad(&e))?.as_bytes().to_vec()
        }
        _ => {
            return Err(not_supported(
                &ctx,
                format!("cannot import an Ed25519 key as {format}"),
            ))
        }
    };
    out(&ctx, der)
}

/// `edParts(der, private)`: `[d or empty, x, spki]`.
fn ed_parts<'js>(ctx: Ctx<'js>, der: Bytes<'js>, private: bool) -> Result<Vec<Bytes<'js>>> {
    use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
    let (d, public) = if private {
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(bytes(&der))
            .map_err(|e| data_error(&ctx, e))?;
        (key.to_bytes().to_vec(), key.verifying_key())
    } else {
        (
            Vec::new(),
            ed25519_dalek::VerifyingKey::from_public_key_der(bytes(&der))
                .map_err(|e| data_error(&ctx, e))?,
        )
    };
    let spki = public
        .to_public_key_der()
        .map_err(|e| operation(&ctx, e))?
        .as_bytes()
        .to_vec();
    [d, public.as_bytes().to_vec(), spki]
        .into_iter()
        .map(|p| out(&ctx, p))
        .collect()
}

// ---- X25519 (RFC 7748; keys as RFC 8410 DER) -----------------------------------

/// The SPKI DER of an X25519 public key, before its 32 bytes.
const X25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];
/// The PKCS #8 DER of an X25519 private key, before its 32 bytes.
const X25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];

/// The 32 key bytes after `prefix`, if `der` is exactly that.
fn x25519_key(der: &[u8], prefix: &[u8]) -> Option<[u8; 32]> {
    der.strip_prefix(prefix)?.try_into().ok()
}

fn x25519_der(prefix: &[u8], key: &[u8; 32]) -> Vec<u8> {
    [prefix, key.as_slice()].concat()
}

fn x25519_public(secret: &x25519_dalek::StaticSecret) -> [u8; 32] {
    x25519_dalek::PublicKey::from(secret).to_bytes()
}

/// `xGenerate()`: `[pkcs8, spki]` of a new X25519 key pair.
fn x_generate<'js>(ctx: Ctx<'js>) -> Result<Vec<Bytes<'js>>> {
    let secret = x25519_dalek::StaticSecret::random_from_rng(HostRng);
    let private = x25519_der(&X25519_PKCS8_PREFIX, &secret.to_bytes());
    let public = x25519_der(&X25519_SPKI_PREFIX, &x25519_public(&secret));
    Ok(vec![out(&ctx, private)?, out(&ctx, public)?])
}

/// `xImport(format, data, private)`: PKCS #8 or SPKI DER. Formats: `raw`
/// (public, 32 bytes), `spki`, `pkcs8` (the RFC 8410 forms), `jwk` (data:
/// `[d or empty, x]`).
fn x_import<'js>(
    ctx: Ctx<'js>,
    format: String,
    data: Vec<Bytes<'js>>,
    private: bool,
) -> Result<Bytes<'js>> {
    let bad = |why: &str| data_error(&ctx, format!("not an X25519 key: {why}"));
    let first = data.first().map(bytes).unwrap_or_default();
    let raw = |b: &[u8]| -> Result<[u8; 32]> { b.try_into().map_err(|_| bad("a key is 32 bytes")) };
    let der = match (format.as_str(), private) {
        ("pkcs8", true) => {
            x25519_key(first, &X25519_PKCS8_PREFIX).ok_or_else(|| bad("not RFC 8410 PKCS #8"))?;
            first.to_vec()
        }
        ("spki", false) => {
            x25519_key(first, &X25519_SPKI_PREFIX).ok_or_else(|| bad("not an X25519 SPKI"))?;
            first.to_vec()
        }
        ("raw", false) => x25519_der(&X25519_SPKI_PREFIX, &raw(first)?),
        ("jwk", false) => x25519_der(
            &X25519_SPKI_PREFIX,
            &raw(data.get(1).map(bytes).unwrap_or_default())?,
        ),
        ("jwk", true) => {
            let secret = x25519_dalek::StaticSecret::from(raw(first)?);
            if data.get(1).map(bytes) != Some(x25519_public(&secret).as_slice()) {
                return Err(bad("d does not match x"));
            }
            x25519_der(&X25519_PKCS8_PREFIX, &secret.to_bytes())
        }
        _ => {
            return Err(not_supported(
                &ctx,
                format!("cannot import an X25519 key as {format}"),
            ))
        }
    };
    out(&ctx, der)
}

/// `xParts(der, private)`: `[d (empty for a public key), x, spki]`.
fn x_parts<'js>(ctx: Ctx<'js>, der: Bytes<'js>, private: bool) -> Result<Vec<Bytes<'js>>> {
    let bad = || data_error(&ctx, "not an X25519 key");
    let (d, x) = if private {
        let d = x25519_key(bytes(&der), &X25519_PKCS8_PREFIX).ok_or_else(bad)?;
        (
            d.to_vec(),
            x25519_public(&x25519_dalek::StaticSecret::from(d)),
        )
    } else {
        (
            Vec::new(),
            x25519_key(bytes(&der), &X25519_SPKI_PREFIX).ok_or_else(bad)?,
        )
    };
    let spki = x25519_der(&X25519_SPKI_PREFIX, &x);
    [d, x.to_vec(), spki]
        .into_iter()
        .map(|p| out(&ctx, p))
        .collect()
}

/// `xDerive(pkcs8, spki)`: the 32-byte shared secret; an all-zero one (a
/// small-order public key) is an OperationError, as the standard says.
fn x_derive<'js>(ctx: Ctx<'js>, pkcs8: Bytes<'js>, spki: Bytes<'js>) -> Result<Bytes<'js>> {
    let bad = || data_error(&ctx, "not an X25519 key");
    let secret = x25519_key(bytes(&pkcs8), &X25519_PKCS8_PREFIX).ok_or_else(bad)?;
    let public = x25519_key(bytes(&spki), &X25519_SPKI_PREFIX).ok_or_else(bad)?;
    let shared = x25519_dalek::StaticSecret::from(secret)
        .diffie_hellman(&x25519_dalek::PublicKey::from(public));
    if !shared.was_contributory() {
        return Err(operation(&ctx, "the X25519 shared secret is all zeros"));
    }
    out(&ctx, shared.as_bytes().to_vec())
}

// ---- RSA (RSASSA-PKCS1-v1_5, RSA-PSS) ----------------------------------------------

fn rsa_generate<'js>(ctx: Ctx<'js>, bits: u32, exponent: Bytes<'js>) -> Result<Vec<Bytes<'js>>> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let e = rsa::BigUint::from_bytes_be(bytes(&exponent));
    let key = rsa::RsaPrivateKey::new_with_exp(&mut HostRng, bits as usize, &e)
        .map_err(|e| operation(&ctx, e))?;
    let private = key
        .to_pkcs8_der()
        .map_err(|e| operation(&ctx, e))?
        .as_bytes()
        .to_vec();
    let public = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| operation(&ctx, e))?
        .as_bytes()
        .to_vec();
    Ok(vec![out(&ctx, private)?, out(&ctx, public)?])
}

fn rsa_sign<'js>(
    ctx: Ctx<'js>,
    pss: bool,
    hash_name: String,
    pkcs8: Bytes<'js>,
    data: Bytes<'js>,
    salt: Option<u32>,
) -> Result<Bytes<'js>> {
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(bytes(&pkcs8)).map_err(|e| data_error(&ctx, e))?;
    let prehash = hash(&ctx, &hash_name, bytes(&data))?;
    let signature = with_hash!(&ctx, hash_name.as_str(), D => if pss {
        key.sign_with_rng(&mut HostRng, rsa::Pss::new_with_salt::<D>(salt.unwrap_or(0) as usize), &prehash)
    } else {
        key.sign(rsa::Pkcs1v15Sign::new::<D>(), &prehash)
    });
    out(&ctx, signature.map_err(|e| operation(&ctx, e))?)
}

fn rsa_verify<'js>(
    ctx: Ctx<'js>,
    pss: bool,
    hash_name: String,
    spki: Bytes<'js>,
    signature: Bytes<'js>,
    data: Bytes<'js>,
    salt: Option<u32>,
) -> Result<bool> {
    use rsa::pkcs8::DecodePublicKey;
    let key =
        rsa::RsaPublicKey::from_public_key_der(bytes(&spki)).map_err(|e| data_error(&ctx, e))?;
    let prehash = hash(&ctx, &hash_name, bytes(&data))?;
    Ok(with_hash!(&ctx, hash_name.as_str(), D => if pss {
        key.verify(rsa::Pss::new_with_salt::<D>(salt.unwrap_or(0) as usize), &prehash, bytes(&signature)).is_ok()
    } else {
        key.verify(rsa::Pkcs1v15Sign::new::<D>(), &prehash, bytes(&signature)).is_ok()
    }))
}

/// `rsaOaep(encrypt, hash, der, data, label)`: RSA-OAEP with the public key
/// (SPKI) or, to decrypt, the private one (PKCS #8). The `rsa` crate takes
/// a label as text: a label that is not UTF-8 is not supported.
fn rsa_oaep<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    hash_name: String,
    der: Bytes<'js>,
    data: Bytes<'js>,
    label: Bytes<'js>,
) -> Result<Bytes<'js>> {
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    let label = std::str::from_utf8(bytes(&label))
        .map_err(|_| {
            not_supported(
                &ctx,
                "RSA-OAEP labels that are not UTF-8 text are not supported",
            )
        })?
        .to_owned();
    let padding = with_hash!(&ctx, hash_name.as_str(), D => if label.is_empty() {
        rsa::Oaep::new::<D>()
    } else {
        rsa::Oaep::new_with_label::<D, _>(label)
    });
    let result = if encrypt {
        let key =
            rsa::RsaPublicKey::from_public_key_der(bytes(&der)).map_err(|e| data_error(&ctx, e))?;
        key.encrypt(&mut HostRng, padding, bytes(&data))
    } else {
        let key =
            rsa::RsaPrivateKey::from_pkcs8_der(bytes(&der)).map_err(|e| data_error(&ctx, e))?;
        key.decrypt(padding, bytes(&data))
    };
    out(&ctx, result.map_err(|e| operation(&ctx, e))?)
}

/// `rsaImport(format, data, private)`: PKCS #8 or SPKI DER. `jwk` data is
/// `[n, e]` or `[n, e, d, p, q, dp, dq, qi]` (big-endian bytes).
fn rsa_import<'js>(
    ctx: Ctx<'js>,
    format: String,
    data: Vec<Bytes<'js>>,
    private: bool,
) -> Result<Bytes<'js>> {
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
    let bad = |e: &dyn std::fmt::Display| data_error(&ctx, format!("not an RSA key: {e}"));
    let first = data.first().map(bytes).unwrap_or_default();
    let int = |i: usize| rsa::BigUint::from_bytes_be(data.get(i).map(bytes).unwrap_or_default());
    let der = match (format.as_str(), private) {
        ("pkcs8", true) => rsa::RsaPrivateKey::from_pkcs8_der(first)
            .map_err(|e| bad(&e))?
            .to_pkcs8_der()
            .map_err(|e| bad(&e))?
            .as_bytes()
            .to_vec(),
        ("spki", false) => rsa::RsaPublicKey::from_public_key_der(first)
            .map_err(|e| bad(&e))?
            .to_public_key_der()
            .map_err(|e| bad(&e))?
            .as_bytes()
            .to_vec(),
        ("jwk", false) => rsa::RsaPublicKey::new(int(0), int(1))
            .map_err(|e| bad(&e))?
            .to_public_key_der()
            .map_err(|e| bad(&e))?
            .as_bytes()
            .to_vec(),
        ("jwk", true) => {
            let mut key =
                rsa::RsaPrivateKey::from_components(int(0), int(1), int(2), vec![int(3), int(4)])
                    .map_err(|e| bad(&e))?;
            key.validate().map_err(|e| bad(&e))?;
            key.precompute().map_err(|e| bad(&e))?;
            key.to_pkcs8_der().map_err(|e| bad(&e))?.as_bytes().to_vec()
        }
        _ => {
            return Err(not_supported(
                &ctx,
                format!("cannot import an RSA key as {format}"),
            ))
        }
    };
    out(&ctx, der)
}

/// `rsaParts(der, private)`: `[n, e, spki]` and for a private key also
/// `d, p, q, dp, dq, qi`.
fn rsa_parts<'js>(ctx: Ctx<'js>, der: Bytes<'js>, private: bool) -> Result<Vec<Bytes<'js>>> {
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let mut parts: Vec<Vec<u8>> = Vec::new();
    if private {
        let mut key =
            rsa::RsaPrivateKey::from_pkcs8_der(bytes(&der)).map_err(|e| data_error(&ctx, e))?;
        key.precompute().map_err(|e| operation(&ctx, e))?;
        let public = key.to_public_key();
        parts.push(public.n().to_bytes_be());
        parts.push(public.e().to_bytes_be());
        parts.push(
            public
                .to_public_key_der()
                .map_err(|e| operation(&ctx, e))?
                .as_bytes()
                .to_vec(),
        );
        let primes = key.primes();
        parts.push(key.d().to_bytes_be());
        parts.push(primes[0].to_bytes_be());
        parts.push(primes[1].to_bytes_be());
        parts.push(key.dp().map(|v| v.to_bytes_be()).unwrap_or_default());
        parts.push(key.dq().map(|v| v.to_bytes_be()).unwrap_or_default());
        let qinv = key
            .qinv()
            .and_then(|v| v.to_biguint())
            .map(|v| v.to_bytes_be())
            .unwrap_or_default();
        parts.push(qinv);
    } else {
        let key =
            rsa::RsaPublicKey::from_public_key_der(bytes(&der)).map_err(|e| data_error(&ctx, e))?;
        parts.push(key.n().to_bytes_be());
        parts.push(key.e().to_bytes_be());
        parts.push(bytes(&der).to_vec());
    }
    parts.into_iter().map(|p| out(&ctx, p)).collect()
}

/// Adds the crypto natives to `native`.
pub(super) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> Result<()> {
    macro_rules! natives {
        ($($name:literal => $f:expr),* $(,)?) => {
            $(native.set($name, Function::new(ctx.clone(), $f)?.with_name($name)?)?;)*
        };
    }
    natives! {
        "digest" => digest,
        "hmacSign" => hmac_sign,
        "hmacVerify" => hmac_verify,
        "aesGcm" => aes_gcm,
        "aesCbc" => aes_cbc,
        "aesCtr" => aes_ctr,
        "aesKw" => aes_kw,
        "pbkdf2" => pbkdf2,
        "hkdf" => hkdf,
        "ecGenerate" => ec_generate,
        "ecSign" => ec_sign,
        "ecVerify" => ec_verify,
        "ecImport" => ec_import,
        "ecParts" => ec_parts,
        "ecdhDerive" => ecdh_derive,
        "edGenerate" => ed_generate,
        "edSign" => ed_sign,
        "edVerify" => ed_verify,
        "edImport" => ed_import,
        "edParts" => ed_parts,
        "xGenerate" => x_generate,
        "xImport" => x_import,
        "xParts" => x_parts,
        "xDerive" => x_derive,
        "rsaGenerate" => rsa_generate,
        "rsaSign" => rsa_sign,
        "rsaVerify" => rsa_verify,
        "rsaImport" => rsa_import,
        "rsaParts" => rsa_parts,
        "rsaOaep" => rsa_oaep,
    }
    Ok(())
}
