//! Conformance: RFC 9458 Appendix A reproduced byte for byte, and RFC 9180 Appendix A test
//! vectors for the HPKE suites used. Values copied from the RFCs' text:
//! <https://www.rfc-editor.org/rfc/rfc9458.html#appendix-A>,
//! <https://www.rfc-editor.org/rfc/rfc9180.html#appendix-A> (A.1.1, A.2.1, A.3.1, base mode,
//! sequence number 0, first exporter value).

use super::message::{decode_response, encode_response};
use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

// RFC 9458 Appendix A.
const A_SK_R: &str = "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a";
const A_KEY_CONFIG: &str =
    "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003";
const A_REQUEST: &str = "00034745540568747470730b6578616d706c652e636f6d012f";
const A_ENC: &str = "4b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b472";
const A_ENCAPSULATED_REQUEST: &str = "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b4726374e469135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525";
const A_RESPONSE: &str = "0140c8";
const A_EXPORTED_SECRET: &str = "62d87a6ba569ee81014c2641f52bea36";
const A_RESPONSE_NONCE: &str = "c789e7151fcba46158ca84b04464910d";
const A_ENCAPSULATED_RESPONSE: &str =
    "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd";

fn rfc9458_key() -> ServerKey {
    ServerKey::from_secret(
        1,
        Kem::X25519Sha256,
        &h(A_SK_R),
        vec![Aead::Aes128Gcm, Aead::ChaCha20Poly1305],
    )
    .unwrap()
}

#[test]
fn rfc9458_key_configuration() {
    let key = rfc9458_key();
    assert_eq!(hex::encode(key.config().encode()), A_KEY_CONFIG);
    let decoded = KeyConfig::decode(&h(A_KEY_CONFIG)).unwrap();
    assert_eq!(&decoded, key.config());
    // The list form (RFC 9540) is the configuration behind its 2-byte length.
    let list = KeyConfig::encode_list(std::slice::from_ref(key.config()));
    assert_eq!(hex::encode(&list), format!("002d{A_KEY_CONFIG}"));
    assert_eq!(KeyConfig::decode_list(&list).unwrap(), vec![decoded]);
}

#[test]
fn rfc9458_request_is_decapsulated_to_the_published_bytes() {
    let opened = rfc9458_key()
        .open_request(&h(A_ENCAPSULATED_REQUEST))
        .unwrap();
    assert_eq!(hex::encode(&opened.bhttp), A_REQUEST);
    assert_eq!(hex::encode(&opened.enc), A_ENC);
    assert_eq!(hex::encode(&*opened.sealer.secret), A_EXPORTED_SECRET);
    assert_eq!(
        request_enc(&h(A_ENCAPSULATED_REQUEST), Kem::X25519Sha256).map(hex::encode),
        Some(A_ENC.to_owned())
    );
}

#[test]
fn rfc9458_response_is_encapsulated_to_the_published_bytes() {
    let opened = rfc9458_key()
        .open_request(&h(A_ENCAPSULATED_REQUEST))
        .unwrap();
    let sealed = opened
        .sealer
        .seal_with_nonce(&h(A_RESPONSE), &h(A_RESPONSE_NONCE))
        .unwrap();
    assert_eq!(hex::encode(&sealed), A_ENCAPSULATED_RESPONSE);

    // The client side opens the published response with the same exported secret.
    let opener = ResponseOpener {
        aead: Aead::Aes128Gcm,
        enc: h(A_ENC),
        secret: zeroize::Zeroizing::new(h(A_EXPORTED_SECRET)),
    };
    assert_eq!(
        hex::encode(opener.open(&h(A_ENCAPSULATED_RESPONSE)).unwrap()),
        A_RESPONSE
    );
    assert_eq!(decode_response(&h(A_RESPONSE)).unwrap().status, 200);
}

#[test]
fn rfc9458_request_sealed_by_the_client_has_the_published_shape_and_opens() {
    // The RFC prints skE, not the ikmE our sealer derives it from, so the ciphertext differs;
    // the header, the lengths and the round trip are what must hold.
    let key = rfc9458_key();
    let sealed =
        seal_request_with_ikm(key.config(), Aead::Aes128Gcm, &h(A_REQUEST), &[7; 32]).unwrap();
    let published = h(A_ENCAPSULATED_REQUEST);
    assert_eq!(sealed.bytes.len(), published.len());
    assert_eq!(sealed.bytes.get(..7), published.get(..7));
    let opened = key.open_request(&sealed.bytes).unwrap();
    assert_eq!(hex::encode(&opened.bhttp), A_REQUEST);
    let response = opened.sealer.seal(&h(A_RESPONSE)).unwrap();
    assert_eq!(
        hex::encode(sealed.opener.open(&response).unwrap()),
        A_RESPONSE
    );
}

/// One RFC 9180 base-mode vector.
struct Vector {
    kem: Kem,
    aead: Aead,
    ikm_e: &'static str,
    pk_rm: &'static str,
    sk_rm: &'static str,
    enc: &'static str,
    ct0: &'static str,
    export0: &'static str,
}

const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
const AAD0: &str = "436f756e742d30";

const VECTORS: [Vector; 3] = [
    // A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
    Vector {
        kem: Kem::X25519Sha256,
        aead: Aead::Aes128Gcm,
        ikm_e: "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
        pk_rm: "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
        sk_rm: "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
        enc: "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
        ct0: "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
        export0: "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee",
    },
    // A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305.
    Vector {
        kem: Kem::X25519Sha256,
        aead: Aead::ChaCha20Poly1305,
        ikm_e: "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b",
        pk_rm: "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
        sk_rm: "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
        enc: "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
        ct0: "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
        export0: "4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e",
    },
    // A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
    Vector {
        kem: Kem::P256Sha256,
        aead: Aead::Aes128Gcm,
        ikm_e: "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e",
        pk_rm: "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0",
        sk_rm: "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
        enc: "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4",
        ct0: "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434",
        export0: "",
    },
];

#[test]
fn rfc9180_vectors_seal_and_open_byte_for_byte() {
    for v in &VECTORS {
        let (sk_r, pk_r) = suite::private_key(v.kem, &h(v.sk_rm)).unwrap();
        assert_eq!(hex::encode(pk_r), v.pk_rm);
        let sealed = suite::seal(
            v.kem,
            v.aead,
            &h(v.pk_rm),
            &h(INFO),
            &h(AAD0),
            &h(PT),
            &h(v.ikm_e),
        )
        .unwrap();
        assert_eq!(hex::encode(&sealed.enc), v.enc, "{:?} {:?}", v.kem, v.aead);
        assert_eq!(
            hex::encode(&sealed.ciphertext),
            v.ct0,
            "{:?} {:?}",
            v.kem,
            v.aead
        );
        let opened = suite::open(v.aead, &sk_r, &h(v.enc), &h(INFO), &h(AAD0), &h(v.ct0)).unwrap();
        assert_eq!(hex::encode(&opened.plaintext), PT);
        assert_eq!(opened.secret, sealed.secret);
        let mut tampered = h(v.ct0);
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert_eq!(
            suite::open(v.aead, &sk_r, &h(v.enc), &h(INFO), &h(AAD0), &tampered).err(),
            Some(OhttpError::Decrypt)
        );
    }
}

#[test]
fn rfc9180_exporter_matches_for_the_x25519_vectors() {
    use ::hpke::kdf::HkdfSha256;
    use ::hpke::{Deserializable, OpModeR};
    for v in VECTORS.iter().filter(|v| !v.export0.is_empty()) {
        // The KEM the suites use: natively aws-lc's (`dhkem.rs`).
        type K = suite::X25519HkdfSha256;
        let sk = <K as ::hpke::Kem>::PrivateKey::from_bytes(&h(v.sk_rm)).unwrap();
        let enc = <K as ::hpke::Kem>::EncappedKey::from_bytes(&h(v.enc)).unwrap();
        let mut out = [0_u8; 32];
        match v.aead {
            Aead::Aes128Gcm => ::hpke::setup_receiver::<::hpke::aead::AesGcm128, HkdfSha256, K>(
                &OpModeR::Base,
                &sk,
                &enc,
                &h(INFO),
            )
            .unwrap()
            .export(b"", &mut out)
            .unwrap(),
            Aead::ChaCha20Poly1305 => ::hpke::setup_receiver::<
                ::hpke::aead::ChaCha20Poly1305,
                HkdfSha256,
                K,
            >(&OpModeR::Base, &sk, &enc, &h(INFO))
            .unwrap()
            .export(b"", &mut out)
            .unwrap(),
        }
        assert_eq!(hex::encode(out), v.export0);
    }
}

#[test]
fn key_lists_skip_unsupported_and_refuse_malformed() {
    let x = rfc9458_key();
    let p = ServerKey::generate(2, Kem::P256Sha256).unwrap();
    // An X-Wing (0x647a) configuration first: skipped, the others kept in order.
    let mut list = vec![0x00, 0x07, 9, 0x64, 0x7a, 0, 0, 0, 0];
    list.extend(KeyConfig::encode_list(&[
        x.config().clone(),
        p.config().clone(),
    ]));
    let decoded = KeyConfig::decode_list(&list).unwrap();
    assert_eq!(
        decoded.iter().map(|c| c.key_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(matches!(
        KeyConfig::decode_list(&list[..list.len() - 1]),
        Err(OhttpError::KeyConfig(_))
    ));
    assert_eq!(
        KeyConfig::decode_list(&[]),
        Err(OhttpError::NoSupportedConfig)
    );
}

#[test]
fn unknown_key_id_suite_and_tampering_are_refused() {
    let key = rfc9458_key();
    let mut other = h(A_ENCAPSULATED_REQUEST);
    other[0] = 9;
    assert_eq!(
        key.open_request(&other).err(),
        Some(OhttpError::UnknownKey(9))
    );
    let mut suite = h(A_ENCAPSULATED_REQUEST);
    suite[6] = 2; // AES-256-GCM: not offered.
    assert_eq!(
        key.open_request(&suite).err(),
        Some(OhttpError::UnsupportedSuite)
    );
    let mut tampered = h(A_ENCAPSULATED_REQUEST);
    *tampered.last_mut().unwrap() ^= 0x80;
    assert_eq!(key.open_request(&tampered).err(), Some(OhttpError::Decrypt));
    assert_eq!(key.open_request(&[1, 0]).err(), Some(OhttpError::Malformed));
}

#[test]
fn responses_are_padded_to_buckets_and_still_decode() {
    let body = br#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#;
    let padded = encode_response(200, "application/json", body, &[256, 1024]).unwrap();
    assert_eq!(padded.len(), 256);
    let decoded = decode_response(&padded).unwrap();
    assert_eq!(decoded.body, body);
    assert_eq!(decoded.content_type.as_deref(), Some("application/json"));
    let big = vec![b'x'; 2000];
    assert!(
        encode_response(200, "application/json", &big, &[256, 1024])
            .unwrap()
            .len()
            < 2048
    );
}
