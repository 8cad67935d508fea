//! The signature examples of the RFCs, through the same signature-level entry point as the
//! Wycheproof vectors (`jwtgate::__fuzz::verify_jws`): each verifies, and each altered byte
//! makes it fail. (RFC 7520's examples are among Wycheproof's vectors, in `wycheproof.rs`.)

/// RFC 7515 appendix A.1: HS256.
const RFC7515_A1_KEY: &str = r#"{"kty":"oct","alg":"HS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const RFC7515_A1_JWS: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// RFC 8037 appendix A.4: Ed25519 (the public key of A.1 and A.2).
const RFC8037_A4_KEY: &str = r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const RFC8037_A4_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn altered(jws: &str, at: usize) -> String {
    let mut bytes = jws.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn check(jws: &str, key: &str) {
    assert_eq!(jwtgate::__fuzz::verify_jws(jws, key), Ok(()));
    let header_end = jws.find('.').unwrap();
    let payload_end = jws.rfind('.').unwrap();
    // A byte of the payload, and of the signature: no longer valid.
    for at in [header_end + 2, payload_end + 3, jws.len() - 3] {
        assert!(
            jwtgate::__fuzz::verify_jws(&altered(jws, at), key).is_err(),
            "altered at {at}"
        );
    }
}

#[test]
fn rfc_7515_appendix_a1_hs256() {
    check(RFC7515_A1_JWS, RFC7515_A1_KEY);
}

#[test]
fn rfc_8037_appendix_a4_ed25519() {
    check(RFC8037_A4_JWS, RFC8037_A4_KEY);
}
