//! Generates the DPDK bindings with bindgen and compiles the C shim, both with the exact flags
//! `pkg-config --cflags libdpdk` gives (they include `-include rte_config.h` and `-march=...`),
//! and links DPDK dynamically (Debian's static archives would pull in every PMD).

#[cfg(feature = "bind")]
mod bind {
    use std::env;
    use std::path::PathBuf;
    use std::process::{exit, Command};

    pub(crate) fn pkg_config(arg: &str) -> Vec<String> {
        let out = Command::new("pkg-config").args([arg, "libdpdk"]).output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            Ok(o) => fail(&format!(
                "`pkg-config {arg} libdpdk` failed ({}): install the Debian package `libdpdk-dev` \
                 (DPDK 22.11) or set PKG_CONFIG_PATH to a DPDK build",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => fail(&format!(
                "cannot run pkg-config ({e}): install the Debian packages `pkg-config` and `libdpdk-dev`"
            )),
        }
    }

    fn fail(msg: &str) -> ! {
        eprintln!("error: dpdk-sys: {msg}");
        println!("cargo:warning=dpdk-sys: {msg}");
        exit(1)
    }

    pub(crate) fn main() {
        println!("cargo:rerun-if-changed=csrc/wrapper.h");
        println!("cargo:rerun-if-changed=csrc/shim.c");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
        println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");

        let cflags = pkg_config("--cflags");
        let libs = pkg_config("--libs");

        for l in &libs {
            if let Some(dir) = l.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={dir}");
            } else if let Some(lib) = l.strip_prefix("-l") {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
        }

        // `rte_vdev_init` (creating virtual devices after start-up) lives in the vdev bus
        // driver, which `pkg-config --libs` leaves out (drivers are loaded as plugins).
        println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");
        // `rte_eth_from_rings` (back-to-back ring ports for the DPDK pipeline benchmark) lives
        // in the ring PMD, also a plugin.
        println!("cargo:rustc-link-lib=dylib=rte_net_ring");

        let mut cc = cc::Build::new();
        cc.file("csrc/shim.c").include("csrc").warnings(false);
        for f in &cflags {
            cc.flag(f);
        }
        cc.compile("pshim6_dpdk_shim");

        let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("bindings.rs");
        let builder = bindgen::Builder::default()
            .header("csrc/wrapper.h")
            .clang_args(&cflags)
            .clang_arg("-Icsrc")
            .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_socket_id|rte_strerror")
            .allowlist_function("rte_eth_dev_count_avail|rte_eth_dev_get_port_by_name")
            .allowlist_function("rte_eth_dev_socket_id|rte_eth_dev_start|rte_eth_dev_stop")
            .allowlist_function("rte_eth_dev_close|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup")
            .allowlist_function("rte_eth_promiscuous_enable|rte_eth_stats_get|rte_eth_stats_reset")
            .allowlist_function("rte_eth_xstats_get|rte_eth_xstats_get_names")
            .allowlist_function("rte_eth_macaddr_get|rte_eth_dev_set_mtu")
            .allowlist_function("rte_vdev_init|rte_vdev_uninit")
            .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count")
            .allowlist_function("pshim6_.*")
            .allowlist_type("rte_mbuf|rte_mempool|rte_eth_stats|rte_eth_xstat|rte_eth_xstat_name|rte_ether_addr")
            .allowlist_var("RTE_MAX_ETHPORTS|SOCKET_ID_ANY|RTE_ETH_NAME_MAX_LEN")
            // Known bindgen traps in DPDK 22.11's headers (packed bitfield unions).
            .opaque_type("rte_l2tpv2_combined_msg_hdr")
            .opaque_type("rte_gtp_psc_generic_hdr")
            .derive_default(true)
            .layout_tests(true)
            .generate_comments(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        let bindings = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            builder.generate()
        })) {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => fail(&format!(
                "bindgen failed on the DPDK headers ({e}): check that `libdpdk-dev` is installed"
            )),
            Err(_) => fail(
                "bindgen could not load libclang: install the Debian packages `clang` and \
                 `libclang-dev` (or set LIBCLANG_PATH)",
            ),
        };
        if let Err(e) = bindings.write_to_file(&out) {
            fail(&format!("cannot write {}: {e}", out.display()));
        }
    }
}

fn main() {
    // Without the `bind` feature the crate is empty: nothing to generate or link.
    #[cfg(feature = "bind")]
    bind::main();
}
