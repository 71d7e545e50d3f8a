//! `pshim6 check-config FILE`: loads a `pshim6 run` configuration exactly as `run` would
//! (file + `PSHIM6_*` environment, every check, the site key and the API token read) without
//! opening an interface, and says what it would start.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::CheckConfigArgs;

/// Checks the file; an error names the key and the problem.
pub(crate) fn check_config(args: &CheckConfigArgs) -> Result<ExitCode> {
    let cfg = run_config::load(&args.file)?;
    let dp = &cfg.pipeline.dataplane;
    println!(
        "{}: ok: backend {}, {} provider(s), {} worker(s), {} host(s), {} peer(s), API {}, TE {:?} policy",
        args.file.display(),
        cfg.backend_name,
        dp.providers.len(),
        cfg.workers,
        cfg.site.hosts.len(),
        cfg.static_peers.len(),
        cfg.api
            .as_ref()
            .map_or_else(|| "off".to_string(), |a| format!("on {}", a.listen)),
        cfg.te.mode,
    );
    match &cfg.dhcp_store {
        Some(run_config::StoreSettings::Journal(j)) => {
            println!("DHCPv6: bindings in the journal {}", j.display());
        }
        Some(run_config::StoreSettings::Etcd(e)) => println!(
            "DHCPv6: bindings on etcd {} under {} (write timeout {} ms; not contacted by check-config)",
            e.endpoints.join(","),
            e.prefix,
            e.timeout.as_millis()
        ),
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}
