//! Runs the built `pshim6` binary: `cga generate|verify`, `hba generate`, `keygen`.

// Test helpers outside `#[test]` fns: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The throw-away RSA-1024 key of spec/cga-hba.md §11.3 (fast: no key generation).
static TEST_KEY_PEM: &str = include_str!("../../cga/testdata/rsa1024-test-key.pem");

/// RFC 3972 Appendix A (spec/cga-hba.md §11.1).
static RFC3972_ADDRESS: &str = "fe80::3c4a:5bf6:ffb4:ca6c";
static RFC3972_PDS_HEX: &str = "89a8a8b2e858d8b8f2633f44d2d4ce9bfe800000000000000030\
5c300d06092a864886f70d0101010500034b003048024100c2c2f137305454f10bd9cea36844b530e9211a4b\
262b16467cb7dfba1f595c0194f275be5a4d386f2c3c2382508773c7867f9b3b9e63a09c7bc48f7a54ebefaf\
0203010001";

fn pshim6(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_pshim6"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "pshim6 {args:?} panicked: {stderr}"
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A fresh directory per test under Cargo's per-target temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_crypto")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn test_key_file(dir: &std::path::Path) -> String {
    let path = dir.join("site.pem");
    fs::write(&path, TEST_KEY_PEM).unwrap();
    path.to_str().unwrap().to_owned()
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(stdout(out).trim()).unwrap()
}

fn verify(address: &str, parameters: &str) -> Output {
    pshim6(&[
        "cga",
        "verify",
        "--address",
        address,
        "--parameters",
        parameters,
    ])
}

#[test]
fn cga_generate_json_with_key_then_verify() {
    let dir = scratch("cga_generate_json");
    let key = test_key_file(&dir);
    let v = json(&pshim6(&[
        "cga",
        "generate",
        "--prefix",
        "fc00:0:0:1::/64",
        "--sec",
        "1",
        "--key",
        &key,
        "--json",
    ]));
    assert_eq!(v["sec"], 1);
    assert_eq!(v["key_bits"], 1024);
    assert_eq!(v["collision_count"], 0);
    let address: Ipv6Addr = v["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(address.segments()[..4], [0xfc00, 0, 0, 1]);
    assert_eq!(address.octets()[8] >> 5, 1, "Sec bits");
    let hex_params = v["parameters"].as_str().unwrap();
    assert_eq!(hex_params, hex_params.to_lowercase());
    let params = cga::CgaParameters::parse(&hex::decode(hex_params).unwrap()).unwrap();
    let site = cga::SiteKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap();
    assert_eq!(params.public_key, site.public_key_der());
    assert_eq!(
        hex::encode(params.modifier),
        v["modifier"].as_str().unwrap()
    );
    cga::verify(address, &params).unwrap();

    let ok = verify(&address.to_string(), hex_params);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), "valid");

    // A few single-byte changes: modifier, prefix, collision count, key, last byte.
    let bytes = hex::decode(hex_params).unwrap();
    for i in [0, 15, 16, 24, 40, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let out = verify(&address.to_string(), &hex::encode(&bad));
        assert_eq!(out.status.code(), Some(1), "byte {i}");
        assert!(
            stdout(&out).starts_with("invalid: "),
            "byte {i}: {}",
            stdout(&out)
        );
    }
    // The same parameters with another address.
    let mut other = address.octets();
    other[15] ^= 1;
    let out = verify(&Ipv6Addr::from(other).to_string(), hex_params);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Hash1"), "{}", stdout(&out));

    // Two runs with the same key give different addresses (random modifier per host).
    let v2 = json(&pshim6(&[
        "cga",
        "generate",
        "--prefix",
        "fc00:0:0:1::/64",
        "--sec",
        "0",
        "--key",
        &key,
        "--json",
    ]));
    assert_ne!(v2["address"], v["address"]);
}

#[test]
fn cga_generate_fresh_key_readable() {
    let out = pshim6(&[
        "cga",
        "generate",
        "--prefix",
        "2001:db8:1:2::/64",
        "--sec",
        "0",
        "--bits",
        "1024",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no `{name}` in {text}"))
    };
    let address = field("address:");
    assert!(address.starts_with("2001:db8:1:2:"), "{address}");
    assert_eq!(field("key bits:"), "1024");
    assert_eq!(field("sec:"), "0");
    let out = verify(&address, &field("parameters:"));
    assert_eq!(stdout(&out).trim(), "valid");
}

#[test]
fn cga_generate_refuses_bad_requests() {
    let out = pshim6(&[
        "cga",
        "generate",
        "--prefix",
        "fc00::/64",
        "--sec",
        "3",
        "--bits",
        "1024",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Sec 3"), "{}", stderr(&out));
    assert!(stderr(&out).contains("2^48"), "{}", stderr(&out));

    let out = pshim6(&[
        "cga",
        "generate",
        "--prefix",
        "fc00::/64",
        "--sec",
        "0",
        "--bits",
        "512",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("too small"), "{}", stderr(&out));

    // A prefix that is not a /64 is a usage error.
    let out = pshim6(&["cga", "generate", "--prefix", "fc00::/48", "--sec", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/64"), "{}", stderr(&out));

    let dir = scratch("cga_generate_bad_key");
    let garbage = dir.join("garbage.pem");
    fs::write(&garbage, "not a key").unwrap();
    let out = pshim6(&[
        "cga",
        "generate",
        "--prefix",
        "fc00::/64",
        "--sec",
        "0",
        "--key",
        garbage.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("garbage.pem"), "{}", stderr(&out));
}

#[test]
fn cga_verify_rfc3972_vector_and_bad_input() {
    let out = verify(RFC3972_ADDRESS, RFC3972_PDS_HEX);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).trim(), "valid");

    // Same PDS, address with Sec 2 bits: Hash2 has only 23 zero bits.
    let out = verify("fe80::5c4a:5bf6:ffb4:ca6c", RFC3972_PDS_HEX);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Hash2"), "{}", stdout(&out));

    // Collision count 3 (byte 24).
    let mut bytes = hex::decode(RFC3972_PDS_HEX).unwrap();
    bytes[24] = 3;
    let out = verify(RFC3972_ADDRESS, &hex::encode(&bytes));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("collision count 3"),
        "{}",
        stdout(&out)
    );

    for (addr, params) in [
        (RFC3972_ADDRESS, "zz"),
        (RFC3972_ADDRESS, "abc"),
        (RFC3972_ADDRESS, ""),
        (RFC3972_ADDRESS, "89a8"),
        ("not-an-address", RFC3972_PDS_HEX),
    ] {
        let out = verify(addr, params);
        assert_eq!(out.status.code(), Some(1), "{addr} {params}");
        let all = stdout(&out) + &stderr(&out);
        assert!(!all.trim().is_empty(), "a reason is printed");
        assert_ne!(stdout(&out).trim(), "valid");
    }
    let out = verify(RFC3972_ADDRESS, "zz");
    assert!(stderr(&out).contains("hex"), "{}", stderr(&out));
}

fn hba_members(v: &Value) -> Vec<(Ipv6Addr, cga::CgaParameters)> {
    let addresses = v["addresses"].as_array().unwrap();
    let parameters = v["parameters"].as_array().unwrap();
    assert_eq!(addresses.len(), parameters.len());
    addresses
        .iter()
        .zip(parameters)
        .map(|(a, p)| {
            let a: Ipv6Addr = a.as_str().unwrap().parse().unwrap();
            (
                a,
                cga::CgaParameters::parse(&hex::decode(p.as_str().unwrap()).unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn hba_generate_pure_and_cga_compatible() {
    let prefixes = "2001:db8:a::/64,2001:db8:b::/64,2001:db8:c::/64";
    let v = json(&pshim6(&[
        "hba",
        "generate",
        "--prefixes",
        prefixes,
        "--sec",
        "1",
        "--json",
    ]));
    assert_eq!(v["sec"], 1);
    assert_eq!(v["cga_compatible"], false);
    assert_eq!(v["prefixes"][1], "2001:db8:b::/64");
    let members = hba_members(&v);
    assert_eq!(members.len(), 3);
    for (i, (a, p)) in members.iter().enumerate() {
        assert_eq!(a.segments()[2], 0xa + i as u16);
        assert_eq!(a.octets()[8] >> 5, 1);
        assert_eq!(p.public_key.len(), 68, "pseudo key");
        assert!(!p.multi_prefix().unwrap().public_key_flag);
        for (other, _) in &members {
            cga::hba::verify_member(*other, p).unwrap();
        }
        // Its own PDS also verifies through `cga verify`.
        let out = verify(&a.to_string(), &hex::encode(p.to_bytes()));
        assert_eq!(stdout(&out).trim(), "valid");
    }

    let dir = scratch("hba_generate");
    let key = test_key_file(&dir);
    let v = json(&pshim6(&[
        "hba",
        "generate",
        "--prefixes",
        prefixes,
        "--key",
        &key,
        "--json",
    ]));
    assert_eq!(v["sec"], 0, "default Sec");
    assert_eq!(v["cga_compatible"], true);
    let site = cga::SiteKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap();
    for (a, p) in hba_members(&v) {
        assert_eq!(p.public_key, site.public_key_der());
        assert!(p.multi_prefix().unwrap().public_key_flag);
        cga::verify(a, &p).unwrap();
    }

    let out = pshim6(&[
        "hba",
        "generate",
        "--prefixes",
        "2001:db8:a::/64,2001:db8:b::/64",
    ]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("address:"))
            .count(),
        2
    );
}

#[test]
fn hba_generate_refuses_bad_requests() {
    let out = pshim6(&[
        "hba",
        "generate",
        "--prefixes",
        "2001:db8:a::/64,2001:db8:a::/64",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("duplicate"), "{}", stderr(&out));
    let out = pshim6(&[
        "hba",
        "generate",
        "--prefixes",
        "2001:db8:a::/64",
        "--sec",
        "4",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Sec 4"), "{}", stderr(&out));
    let out = pshim6(&["hba", "generate", "--prefixes", "2001:db8:a::1/64"]);
    assert_eq!(out.status.code(), Some(2));
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_default_bits_mode_0600_and_no_overwrite() {
    let dir = scratch("keygen");
    let path = dir.join("site.pem");
    let p = path.to_str().unwrap();
    let out = pshim6(&["keygen", "--out", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&path), 0o600);
    let pem = fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let key = cga::SiteKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(key.bits(), 2048);

    // The 2048-bit key works for generation.
    let v = json(&pshim6(&[
        "cga",
        "generate",
        "--prefix",
        "fc00::/64",
        "--sec",
        "0",
        "--key",
        p,
        "--json",
    ]));
    assert_eq!(v["key_bits"], 2048);

    // No overwrite without --force; the file is untouched.
    let out = pshim6(&["keygen", "--out", p, "--bits", "1024"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&path).unwrap(), pem);

    // --force replaces it, still 0600, even when the old file was world-readable.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = pshim6(&["keygen", "--out", p, "--bits", "1024", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&path), 0o600);
    let new_pem = fs::read_to_string(&path).unwrap();
    assert_ne!(new_pem, pem);
    assert_eq!(cga::SiteKey::from_pkcs8_pem(&new_pem).unwrap().bits(), 1024);
    // No temporary file left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn keygen_refuses_small_keys_and_writes_nothing() {
    let dir = scratch("keygen_small");
    let path = dir.join("small.pem");
    let out = pshim6(&["keygen", "--out", path.to_str().unwrap(), "--bits", "512"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("too small"), "{}", stderr(&out));
    assert!(!path.exists());
}
