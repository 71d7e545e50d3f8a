//! The operator API of `pshim6 run` (issue #8) through a real HTTP client: every endpoint,
//! 401 without the token, 400 with the reason on bad bodies and parameters, JSON errors, the
//! OpenAPI document checked against the routes that answer, `/metrics` through
//! `promtool check metrics`, SIGHUP reload (what applied live, what needs a restart), the
//! DNS upstreams replaced live (SIGHUP and `PUT /v1/dns/upstreams`), and
//! `pshim6 check-config`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use api_common::*;
use serde_json::Value;

/// Every endpoint of issue #8 (method, path with example parameters, path in the document).
const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("GET", "/v1/contexts", "/v1/contexts"),
    ("GET", "/v1/contexts/12345", "/v1/contexts/{tag}"),
    ("DELETE", "/v1/contexts/12345", "/v1/contexts/{tag}"),
    ("POST", "/v1/contexts/12345/move", "/v1/contexts/{tag}/move"),
    ("GET", "/v1/providers", "/v1/providers"),
    (
        "POST",
        "/v1/providers/up0/drain",
        "/v1/providers/{name}/drain",
    ),
    (
        "POST",
        "/v1/providers/up0/undrain",
        "/v1/providers/{name}/undrain",
    ),
    ("GET", "/v1/hosts", "/v1/hosts"),
    ("GET", "/v1/dns/cache", "/v1/dns/cache"),
    ("PUT", "/v1/dns/upstreams", "/v1/dns/upstreams"),
    ("GET", "/v1/stats", "/v1/stats"),
    ("GET", "/v1/te/policy", "/v1/te/policy"),
    ("PUT", "/v1/te/policy", "/v1/te/policy"),
    ("GET", "/v1/routing", "/v1/routing"),
    ("POST", "/v1/routing/withdraw", "/v1/routing/withdraw"),
    ("POST", "/v1/routing/announce", "/v1/routing/announce"),
    ("GET", "/v1/openapi.json", "/v1/openapi.json"),
    ("GET", "/readyz", "/readyz"),
    ("GET", "/metrics", "/metrics"),
];

const JSON: &str = "application/json";
const MOVE: &str = r#"{"local":"2001:db8:1a::1","peer":"2001:db8:2a::5"}"#;

fn body_for(method: &str) -> Option<(&'static str, &'static str)> {
    matches!(method, "POST" | "PUT").then_some((JSON, MOVE))
}

#[test]
fn every_endpoint_answers_with_auth_json_errors_and_a_valid_document() {
    let app = Appliance::start(
        "all",
        &config_text("", &[("fc00:2:2:2::5", "2001:db8:2a::5")]),
    );
    let addr = app.addr;

    // /healthz is open.
    let h = request(addr, "GET", "/healthz", None, None);
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.json()["status"], "alive");

    // Everything else needs the token: none, a wrong one, another scheme.
    for (method, path, _) in ENDPOINTS {
        for token in [None, Some("wrong-token-0123456789abcdef")] {
            let r = request(addr, method, path, token, body_for(method));
            r.error(401, "unauthorized");
            assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        }
    }

    // Contexts: an empty appliance, one page; bad parameters are 400 naming the parameter.
    let page = app.get("/v1/contexts?limit=5&state=established").json();
    assert_eq!(
        (page["total"].as_u64(), page["limit"].as_u64()),
        (Some(0), Some(5))
    );
    assert!(page["items"].as_array().unwrap().is_empty());
    assert!(page["next_offset"].is_null());
    for (query, word) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("state=open", "state"),
        ("peer=nowhere", "peer"),
        ("ulid=1.2.3.4", "ulid"),
        ("offset=-1", "offset"),
        ("colour=red", "colour"),
    ] {
        let m = app
            .get(&format!("/v1/contexts?{query}"))
            .error(400, "bad_request");
        assert!(m.contains(word), "{query}: {m}");
    }
    app.get("/v1/contexts/12345").error(404, "not_found");
    app.get("/v1/contexts/0x3039").error(404, "not_found");
    for bad in ["abc", "0", "140737488355328"] {
        let m = app
            .get(&format!("/v1/contexts/{bad}"))
            .error(400, "bad_request");
        assert!(m.starts_with("tag:"), "{m}");
    }
    request(addr, "DELETE", "/v1/contexts/12345", Some(TOKEN), None).error(404, "not_found");

    // Move: bad bodies are 400 with the reason; a good body for no context is 404.
    let mv = |body: Option<(&str, &str)>| {
        request(addr, "POST", "/v1/contexts/12345/move", Some(TOKEN), body)
    };
    for (body, word) in [
        (None, "Content-Type"),
        (Some(("text/plain", MOVE)), "Content-Type"),
        (Some((JSON, "")), "empty"),
        (Some((JSON, "{\"local\":")), "EOF"),
        (Some((JSON, "[1,2]")), "invalid type"),
        (
            Some((JSON, r#"{"local":"2001:db8:1a::1"}"#)),
            "missing field `peer`",
        ),
        (
            Some((JSON, r#"{"local":"here","peer":"2001:db8::1"}"#)),
            "IPv6",
        ),
        (
            Some((
                JSON,
                r#"{"local":"2001:db8:1a::1","peer":"2001:db8::1","x":1}"#,
            )),
            "unknown field `x`",
        ),
    ] {
        let m = mv(body).error(400, "bad_request");
        assert!(m.contains(word), "{body:?}: {m}");
    }
    mv(Some((JSON, MOVE))).error(404, "not_found");

    // Providers.
    let provs = app.get("/v1/providers").json();
    let provs = provs.as_array().unwrap();
    assert_eq!(provs.len(), 2);
    assert_eq!(provs[0]["name"], "up0");
    assert_eq!(provs[1]["prefix"], "2001:db8:1b::/64");
    assert_eq!(provs[0]["contexts"], 0);
    assert_eq!(provs[0]["link"], "up", "mem cables are up");
    assert!(provs[0].get("bgp").is_none(), "no [bgp_signal]: {provs:?}");
    // Drain / undrain (traffic engineering): by interface name or provider id.
    let post = |path: &str| request(addr, "POST", path, Some(TOKEN), None);
    let d = post("/v1/providers/up0/drain");
    assert_eq!(d.status, 200, "{d:?}");
    assert_eq!(
        (d.json()["id"].as_u64(), d.json()["drained"].as_bool()),
        (Some(1), Some(true))
    );
    let provs = app.get("/v1/providers").json();
    assert_eq!(provs[0]["drained"], true);
    assert_eq!(provs[1]["drained"], false);
    let m = post("/v1/providers/2/drain").error(409, "conflict");
    assert!(m.contains("last usable provider"), "{m}");
    let u = post("/v1/providers/up0/undrain");
    assert_eq!(u.status, 200, "{u:?}");
    assert_eq!(u.json()["drained"], false);
    for which in ["drain", "undrain"] {
        post(&format!("/v1/providers/nope/{which}")).error(404, "not_found");
    }

    // Services not configured (no [dhcp], no [dns]) say so.
    let m = app.get("/v1/hosts").error(501, "not_implemented");
    assert!(m.contains("[dhcp]"), "{m}");
    let m = app.get("/v1/dns/cache").error(501, "not_implemented");
    assert!(m.contains("[dns]"), "{m}");
    let m = app.get("/v1/routing").error(501, "not_implemented");
    assert!(m.contains("[announce]"), "{m}");
    let m = post("/v1/routing/withdraw").error(501, "not_implemented");
    assert!(m.contains("[announce]"), "{m}");

    // Stats: per worker, per port, queue depths, handshakes, slow-path counters.
    let s = app.get("/v1/stats").json();
    assert_eq!(s["workers"].as_array().unwrap().len(), 1);
    assert!(s["workers"][0]["heartbeat"].as_u64().unwrap() > 0);
    assert!(s["workers"][0]["dropped"]["malformed"].is_u64());
    let ports: Vec<&str> = s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["in0", "up0", "up1"]);
    assert!(s["punt_queue_depth"].is_u64());
    assert_eq!(s["handshakes"]["contexts"], 0);
    // The slow path resolves the two exit routers: its ND counters moved.
    assert!(s["slow_path"]["nd.ns_out"].as_u64().unwrap() >= 2, "{s}");

    // TE policy: the one in force; 400 on a bad body, 422 on refused values, live change.
    let te = app.get("/v1/te/policy");
    assert_eq!(te.status, 200, "{te:?}");
    assert_eq!(te.json()["policy"]["mode"], "first_up");
    let put = |body| request(addr, "PUT", "/v1/te/policy", Some(TOKEN), body);
    put(Some((JSON, "[]"))).error(400, "bad_request");
    put(Some((JSON, "{"))).error(400, "bad_request");
    let m = put(Some((JSON, r#"{"mode":"fastest"}"#))).error(400, "bad_request");
    assert!(m.contains("fastest"), "{m}");
    let m = put(Some((JSON, r#"{"colour":1}"#))).error(400, "bad_request");
    assert!(m.contains("colour"), "{m}");
    let m = put(Some((
        JSON,
        r#"{"mode":"weighted","weights":[{"provider":9,"weight":1}]}"#,
    )))
    .error(422, "invalid");
    assert!(m.contains("provider 9"), "{m}");
    let weighted =
        r#"{"mode":"weighted","weights":[{"provider":1,"weight":70},{"provider":2,"weight":30}]}"#;
    let r = put(Some((JSON, weighted)));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["policy"]["mode"], "weighted");
    let te = app.get("/v1/te/policy").json();
    assert_eq!(te["policy"]["weights"][0]["weight"], 70);
    let shares: Vec<f64> = te["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["target_share"].as_f64().unwrap())
        .collect();
    assert_eq!(shares, [0.7, 0.3]);

    // Readiness.
    let r = app.get("/readyz");
    assert_eq!(r.status, 200, "{r:?}");
    let checks: BTreeSet<String> = r.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        checks,
        BTreeSet::from(["slow_path".into(), "workers".into()])
    );

    // Unknown path and method: JSON too.
    app.get("/v1/nothing").error(404, "not_found");
    request(addr, "PUT", "/v1/contexts", Some(TOKEN), Some((JSON, "{}")))
        .error(405, "method_not_allowed");

    check_metrics(&app);
    check_openapi(&app);
}

/// `/metrics`: the text format, the build info, data-plane counters; `promtool check metrics`
/// (Debian `prometheus`, installed by ci/deps.sh) accepts it.
fn check_metrics(app: &Appliance) {
    let m = app.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    for want in [
        "pshim6_build_info{version=\"",
        "backend=\"mem\"} 1",
        "# TYPE pshim6_worker_packets_total counter",
        "pshim6_dropped_total{worker=\"0\",reason=\"malformed\"} 0",
        "pshim6_port_rx_packets_total{port=\"1\",interface=\"up0\"}",
        "pshim6_port_link_up{port=\"0\",interface=\"in0\"} 1",
        "pshim6_punt_queue_depth 0",
        "pshim6_punt_lane_depth{lane=\"control\"} 0",
        "pshim6_punt_lane_dropped_total{worker=\"0\",lane=\"data\"} 0",
        "pshim6_slowpath_up 1",
        "pshim6_contexts 0",
        "pshim6_engine_events_total{counter=\"i1_sent\"} 0",
        "pshim6_provider_drained{provider=\"1\",interface=\"up0\"} 0",
    ] {
        assert!(m.body.contains(want), "missing `{want}` in\n{}", m.body);
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install Debian `prometheus` (ci/deps.sh does)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(m.body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `$ref` in `v` (recursively).
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The OpenAPI document: OpenAPI 3.1, exactly the endpoints of issue #8 with their methods,
/// every `$ref` resolves, every protected operation asks for the bearer scheme and
/// documents 401, every path parameter is declared; and each documented operation is served
/// (answers something other than "no such endpoint" / "method not allowed").
fn check_openapi(app: &Appliance) {
    let doc = app.get("/v1/openapi.json").json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            documented.insert((method.clone(), path.clone()));
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}: no 2xx"
            );
            if path != "/healthz" {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
                assert!(
                    op["security"][0].get("bearer").is_some(),
                    "{method} {path}: no bearer"
                );
            }
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, in_path, "{method} {path}: path parameters");
        }
    }
    let mut expected: BTreeSet<(String, String)> = ENDPOINTS
        .iter()
        .map(|(m, _, p)| ((*m).to_string(), (*p).to_string()))
        .collect();
    expected.insert(("GET".into(), "/healthz".into()));
    assert_eq!(
        documented, expected,
        "documented operations differ from issue #8's"
    );
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {r}"
        );
    }
    for (method, path, _) in ENDPOINTS {
        let r = request(app.addr, method, path, Some(TOKEN), body_for(method));
        if r.status == 404 || r.status == 405 {
            let m = r.json()["message"].as_str().unwrap().to_string();
            assert!(
                !m.contains("no such endpoint") && !m.contains("method not allowed"),
                "{method} {path} is documented but not served: {m}"
            );
        }
    }
}

#[test]
fn sighup_reloads_peers_and_names_what_needs_a_restart() {
    let mut app = Appliance::start(
        "hup",
        &config_text("", &[("fc00:2:2:2::5", "2001:db8:2a::5")]),
    );
    let cfg = app.dir.join("pshim6.toml");
    let mut newer = config_text(
        "table_capacity = 1024",
        &[
            ("fc00:2:2:2::5", "2001:db8:2a::5"),
            ("fc00:3:3:3::7", "2001:db8:3a::7"),
        ],
    );
    newer.push_str("\n[te]\nmode = \"cheapest_first\"\ncheapest = [2, 1]\noverflow_mbps = 100.0\n");
    app.write_config(&newer);
    let kill = Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    app.wait_for("SIGHUP: reloaded 2 peer(s)", Duration::from_secs(10));
    app.wait_for(
        "traffic-engineering policy reloaded",
        Duration::from_secs(5),
    );
    let line = app.wait_for("applies at the next restart", Duration::from_secs(5));
    assert!(line.contains("table_capacity"), "{line}");
    let mut applied = false;
    for _ in 0..100 {
        if app.get("/v1/te/policy").json()["policy"]["mode"] == "cheapest_first" {
            applied = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(applied, "the reloaded policy never took effect");
    // A broken file is refused and the appliance keeps running.
    std::fs::write(&cfg, "colour = 1\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status()
        .unwrap();
    let line = app.wait_for("keeping the running configuration", Duration::from_secs(10));
    assert!(line.contains("colour"), "{line}");
    assert_eq!(request(app.addr, "GET", "/healthz", None, None).status, 200);
}

fn check_config(dir: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pshim6"))
        .arg("check-config")
        .arg(dir.join("pshim6.toml"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (out.status.success(), text)
}

/// A mistake: name, file text, environment, words the error must contain.
type Case = (
    &'static str,
    String,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

#[test]
fn check_config_accepts_layers_and_names_each_mistake() {
    let good = config_text("", &[]);
    let dir = config_dir("check", &good);
    let (ok, text) = check_config(&dir, &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("ok: backend mem, 2 provider(s), 1 worker(s)"),
        "{text}"
    );
    assert!(text.contains("API on [::1]:0"), "{text}");
    // Environment layers: nested keys with `__`, lists with `,`.
    let (ok, text) = check_config(
        &dir,
        &[
            ("PSHIM6_API__LISTEN", "127.0.0.1:9999"),
            ("PSHIM6_WORKERS", "3"),
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("3 worker(s)") && text.contains("API on 127.0.0.1:9999"),
        "{text}"
    );
    let cases: [Case; 9] = [
        (
            "te policy",
            format!(
                "{good}\n[te]\nmode = \"weighted\"\nweights = [{{ provider = 7, weight = 1 }}]\n"
            ),
            &[],
            &["te", "provider 7"],
        ),
        (
            "unknown env key",
            good.clone(),
            &[("PSHIM6_COLOUR", "red")],
            &["colour", "PSHIM6_COLOUR"],
        ),
        (
            "env type",
            good.clone(),
            &[("PSHIM6_INSIDE__MTU", "big")],
            &["mtu"],
        ),
        (
            "overlapping prefixes",
            good.replace("2001:db8:1b::/64", "2001:db8:1a::/64"),
            &[],
            &["providers[1].prefix", "used twice"],
        ),
        (
            "core used twice",
            good.replace("workers = 1", "worker_cores = [1, 1]"),
            &[],
            &["worker_cores[1]", "core used twice"],
        ),
        (
            "api core is a worker core",
            good.replace("workers = 1", "worker_cores = [1]").replace(
                "token_file = \"api.token\"",
                "token_file = \"api.token\"\ncore = 1",
            ),
            &[],
            &["api.core", "used twice"],
        ),
        (
            "missing key file",
            good.replace("site.pem", "nowhere.pem"),
            &[],
            &["site_key", "nowhere.pem", "missing"],
        ),
        (
            "bad MTU",
            good.replace(
                "link_local = \"fe80::1\"",
                "mtu = 1000\nlink_local = \"fe80::1\"",
            ),
            &[],
            &["inside.mtu", "1280"],
        ),
        (
            "missing token file",
            good.replace("api.token", "nothing.token"),
            &[],
            &["api.token_file", "nothing.token"],
        ),
    ];
    for (name, text, env, words) in cases {
        std::fs::write(dir.join("pshim6.toml"), &text).unwrap();
        let (ok, out) = check_config(&dir, env);
        assert!(!ok, "{name}: accepted");
        for w in words {
            assert!(out.contains(w), "{name}: `{w}` not in: {out}");
        }
    }
    // A readable token file is refused like a readable key.
    std::fs::write(dir.join("pshim6.toml"), &good).unwrap();
    std::fs::set_permissions(
        dir.join("api.token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let (ok, out) = check_config(&dir, &[]);
    assert!(
        !ok && out.contains("api.token_file") && out.contains("0600"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hosts_and_dns_cache_come_from_the_services() {
    let mut text = config_text("", &[]).replace(
        "prefix = \"2001:db8:1a::/64\"",
        "prefix = \"2001:db8:1a::/64\"\naddress = \"2001:db8:1a::1\"",
    );
    text.push_str(
        "\n[dns]\nupstream = [\"[2001:db8:53::53]:53\"]\nupstream_port = 50002\n\n\
         [dhcp]\njournal = \"leases.journal\"\n\n[[dhcp.static]]\n\
         duid = \"00:03:00:01:02:00:00:00:00:01\"\niaid = 1\n\
         modifier = \"000102030405060708090a0b0c0d0e0f\"\n",
    );
    let app = Appliance::start("services", &text);
    let hosts = app.get("/v1/hosts");
    assert_eq!(hosts.status, 200, "{hosts:?}");
    let hosts = hosts.json();
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!(hosts[0]["duid"], "00030001020000000001");
    let cmula: std::net::Ipv6Addr = hosts[0]["cmula"].as_str().unwrap().parse().unwrap();
    assert_eq!(cmula.segments()[..4], [0xfc00, 1, 1, 1], "{cmula}");
    let locs: Vec<std::net::Ipv6Addr> = hosts[0]["locators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().parse().unwrap())
        .collect();
    // One locator per provider: its PA prefix with the CMULA's interface id.
    assert_eq!(locs.len(), 2, "{locs:?}");
    for (l, third) in locs.iter().zip([0x1a, 0x1b]) {
        assert_eq!(l.segments()[..4], [0x2001, 0xdb8, third, 0], "{l}");
        assert_eq!(l.segments()[4..], cmula.segments()[4..], "{l} vs {cmula}");
    }
    // Readiness adds the upstream DNS check when the ALG runs (no query sent yet: fine).
    let r = app.get("/readyz");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("\"dns_upstream\""), "{}", r.body);
    assert!(app
        .get("/metrics")
        .body
        .contains("pshim6_services_events_total{counter=\"dhcp."));
    let cache = app.get("/v1/dns/cache");
    assert_eq!(cache.status, 200, "{cache:?}");
    assert_eq!(cache.json(), serde_json::json!([]));
}

/// `[bgp_signal]`: the followed provider shows its kernel table's routes in
/// `GET /v1/providers` (here an empty table, so no verdict and nothing withdrawn); the other
/// provider shows no `bgp` object. (The routes of a real table in a namespace are followed in
/// the `bgp_signal` unit tests and the `bgp-withdraw` lab.)
#[test]
fn providers_show_the_bgp_signal() {
    let mut text = config_text("", &[]);
    text.push_str("\n[bgp_signal]\nproviders = [{ id = 1, table = 30101 }]\n");
    let app = Appliance::start("bgp", &text);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let provs = loop {
        let provs = app.get("/v1/providers").json();
        if provs[0]["bgp"]["synced"] == true || std::time::Instant::now() > end {
            break provs;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        provs[0]["bgp"],
        serde_json::json!({"routes": 0, "synced": true, "withdrawals": 0, "last_withdraw_ms_ago": null}),
        "{provs:?}"
    );
    assert!(provs[1].get("bgp").is_none(), "{provs:?}");
}

/// Issue #8: "Reload of TE policy and DNS upstreams without a restart (SIGHUP and API); what
/// cannot change live says so."
#[test]
fn dns_upstreams_change_live_by_api_and_sighup_and_the_rest_names_a_restart() {
    let dns = |upstream: &str, timeout: u32| {
        format!("\n[dns]\nupstream = [{upstream}]\nupstream_port = 50003\nupstream_timeout_ms = {timeout}\n")
    };
    // The ALG's upstream queries leave from a provider's own address.
    let base = || {
        config_text("", &[]).replace(
            "prefix = \"2001:db8:1a::/64\"",
            "prefix = \"2001:db8:1a::/64\"\naddress = \"2001:db8:1a::1\"",
        )
    };
    let mut text = base();
    text.push_str(&dns("\"[2001:db8:53::53]:53\"", 1000));
    let mut app = Appliance::start("dns-reload", &text);
    let addr = app.addr;
    let put = move |body: &str| {
        request(
            addr,
            "PUT",
            "/v1/dns/upstreams",
            Some(TOKEN),
            Some((JSON, body)),
        )
    };
    // The API: a new list is taken and returned; bad ones are refused with the reason.
    let r = put(r#"{"upstreams":["[2001:db8:53::54]:53","[2001:db8:53::55]:5353"]}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["upstreams"],
        serde_json::json!(["[2001:db8:53::54]:53", "[2001:db8:53::55]:5353"])
    );
    let m = put(r#"{"upstreams":["nowhere"]}"#).error(400, "bad_request");
    assert!(m.contains("upstreams[0]"), "{m}");
    let m = put(r#"{"upstreams":["192.0.2.53:53"]}"#).error(422, "invalid");
    assert!(m.contains("IPv6"), "{m}");
    put(r#"{"upstreams":[]}"#).error(422, "invalid");
    put(r#"{"servers":[]}"#).error(400, "bad_request");
    app.wait_for(
        "dns upstreams replaced through the API",
        Duration::from_secs(5),
    );

    // SIGHUP: the upstream list applies live, the timeout (restart-only) is named.
    let mut newer = base();
    newer.push_str(&dns("\"[2001:db8:53::99]:53\"", 2000));
    app.write_config(&newer);
    let kill = Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let line = app.wait_for("SIGHUP: dns.upstream reloaded", Duration::from_secs(10));
    assert!(line.contains("[2001:db8:53::99]:53"), "{line}");
    let line = app.wait_for("SIGHUP: applied live:", Duration::from_secs(5));
    assert!(
        line.contains("dns.upstream") && line.contains("te"),
        "{line}"
    );
    let line = app.wait_for("applies at the next restart", Duration::from_secs(5));
    assert!(line.contains("dns.upstream_timeout_ms"), "{line}");
    assert!(!line.contains("dns.upstream ="), "{line}");

    // Without a DNS ALG the API says so.
    drop(app);
    let plain = Appliance::start("dns-none", &config_text("", &[]));
    request(
        plain.addr,
        "PUT",
        "/v1/dns/upstreams",
        Some(TOKEN),
        Some((JSON, r#"{"upstreams":["[2001:db8:53::54]:53"]}"#)),
    )
    .error(501, "not_implemented");
}
