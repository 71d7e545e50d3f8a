//! The operator API of `pshim6 run` checked against its own OpenAPI document by
//! schemathesis (PyPI, installed by `ci/deps.sh`): every operation of `/v1/openapi.json`
//! called with generated parameters and bodies, with the bearer token, and every response
//! checked: no 5xx (`not_a_server_error`), a status the document lists for the operation
//! (`status_code_conformance`), the documented content type (`content_type_conformance`) and
//! a body that matches the documented schema (`response_schema_conformance`).
//!
//! Fixed seed and derandomised generation: the same requests on every run. OpenAPI 3.1 is
//! behind schemathesis 3's `--experimental=openapi-3.1` flag.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod api_common;

use std::process::Command;

use api_common::*;

/// Examples generated per operation.
const EXAMPLES: &str = "15";

#[test]
fn schemathesis_finds_every_response_conforming_to_the_document() {
    let version = Command::new("st").arg("--version").output();
    let ok = version.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "schemathesis (`st`) is needed: run `bash ci/deps.sh` as root ({version:?})"
    );
    // With the DNS ALG, the DHCPv6 server and route announcement (a TAP device in the
    // appliance's own namespace), so that their operations answer too.
    let mut text = config_text("", &[("fc00:2:2:2::5", "2001:db8:2a::5")]).replace(
        "prefix = \"2001:db8:1a::/64\"",
        "prefix = \"2001:db8:1a::/64\"\naddress = \"2001:db8:1a::1\"",
    );
    text.push_str(
        "\n[dns]\nupstream = [\"[2001:db8:53::53]:53\"]\nupstream_port = 50004\n\n\
         [dhcp]\njournal = \"leases.journal\"\n\n[announce]\nrole = \"primary\"\n",
    );
    let app = Appliance::start_for("schemathesis", &text, 900);
    let base = format!("http://{}", app.addr);
    let out = Command::new("st")
        .args(["run", &format!("{base}/v1/openapi.json")])
        .args(["--base-url", &base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--hypothesis-max-examples", EXAMPLES])
        .args(["--hypothesis-seed", "8", "--hypothesis-derandomize"])
        .arg("--experimental=openapi-3.1")
        .args(["--request-timeout", "30000"])
        .arg("--no-color")
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "schemathesis found non-conforming responses (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    // It really ran the operations (a document it could not read also ends quickly).
    assert!(
        stdout.contains("passed") && !stdout.contains("No operations"),
        "{stdout}"
    );
}
