//! Runs the real DHCPv6 client, dhcpcd (Debian `dhcpcd-base`, installed by `ci/deps.sh`), in
//! test mode inside a network namespace: `dhcpcd -T` asks the server, prints the variables it
//! would configure and configures nothing, so a test reads exactly what the client accepted.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// The variable holding the first address of the first IA_NA.
pub const ADDRESS_VAR: &str = "new_dhcp6_ia_na1_ia_addr1";

/// Why `dhcpcd -T` gave no lease.
#[derive(Debug, thiserror::Error)]
pub enum DhcpcdError {
    /// `ip netns exec … dhcpcd` could not be started.
    #[error(
        "cannot run dhcpcd in namespace {ns}: {source}; it needs root, iproute2 and dhcpcd \
         (run `bash ci/deps.sh` as root first)"
    )]
    Spawn {
        /// The namespace.
        ns: String,
        /// The spawn error.
        source: std::io::Error,
    },
    /// dhcpcd ran but printed no address: the server did not answer, or not acceptably.
    #[error("dhcpcd got no address ({status}):\n{stdout}\n{stderr}")]
    NoAddress {
        /// dhcpcd's exit status.
        status: String,
        /// What it printed.
        stdout: String,
        /// Its diagnostics.
        stderr: String,
    },
}

/// Writes `conf_text` to `conf` (an absolute path: dhcpcd does not read a relative one), runs
/// `dhcpcd -T -6 -t SECS -f CONF IFNAME` in namespace `ns`, and returns the variables it
/// printed (`name=value`, quotes removed) when they include an address ([`ADDRESS_VAR`]).
pub fn test_lease(
    ns: &str,
    ifname: &str,
    conf: &Path,
    conf_text: &str,
    secs: u32,
) -> Result<HashMap<String, String>, DhcpcdError> {
    let spawn = |source| DhcpcdError::Spawn {
        ns: ns.to_string(),
        source,
    };
    std::fs::write(conf, conf_text).map_err(spawn)?;
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "dhcpcd", "-T", "-6", "-t"])
        .arg(secs.to_string())
        .arg("-f")
        .arg(conf)
        .arg(ifname)
        .output()
        .map_err(spawn)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let vars = parse_vars(&stdout);
    if vars.contains_key(ADDRESS_VAR) {
        Ok(vars)
    } else {
        Err(DhcpcdError::NoAddress {
            status: out.status.to_string(),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// The `name=value` lines of dhcpcd's test-mode output, single quotes around values removed.
pub fn parse_vars(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_read_and_unquoted() {
        let v = parse_vars(
            "interface='h0'\nnew_dhcp6_ia_na1_ia_addr1='fc00:1:2:3::5'\nno equals sign\n\
             new_dhcp6_name_servers='fc00::1 fc00::2'\n",
        );
        assert_eq!(v[ADDRESS_VAR], "fc00:1:2:3::5");
        assert_eq!(v["new_dhcp6_name_servers"], "fc00::1 fc00::2");
        assert_eq!(v.len(), 3);
    }
}
