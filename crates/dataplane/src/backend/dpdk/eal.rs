//! The EAL, started at most once per process: DPDK cannot be re-initialised after
//! `rte_eal_init` returned (even after a failure), so the first outcome is remembered.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use super::DpdkError;

/// Outcome of the one `rte_eal_init` call of this process.
static EAL: OnceLock<Result<(), DpdkError>> = OnceLock::new();

/// Starts the EAL with `args` (the program name first, as `argv[0]`), or returns the outcome
/// of the first call when it already ran: later arguments are then ignored.
///
/// Typical arguments without NIC or hugepages: `["pshim6", "-l", "0", "--no-huge", "-m",
/// "256", "--no-pci", "--no-shconf", "--vdev=net_ring0"]`.
#[cold]
pub fn init_eal<S: AsRef<str>>(args: &[S]) -> Result<(), DpdkError> {
    EAL.get_or_init(|| start(args)).clone()
}

/// Whether the EAL is running in this process.
pub fn eal_ready() -> bool {
    matches!(EAL.get(), Some(Ok(())))
}

fn start<S: AsRef<str>>(args: &[S]) -> Result<(), DpdkError> {
    let mut owned = Vec::with_capacity(args.len());
    for a in args {
        owned.push(CString::new(a.as_ref()).map_err(|_| DpdkError::Config("NUL in EAL argument"))?);
    }
    if owned.is_empty() {
        owned.push(CString::new("pshim6").map_err(|_| DpdkError::Config("program name"))?);
    }
    let argc =
        i32::try_from(owned.len()).map_err(|_| DpdkError::Config("too many EAL arguments"))?;
    // The EAL may keep pointers into argv (it permutes it while parsing): leak both the
    // strings and the array, once per process.
    let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
    argv.push(std::ptr::null_mut());
    let argv = Box::leak(argv.into_boxed_slice());
    // SAFETY: 1. `argv` holds `argc` valid NUL-terminated strings followed by NULL, leaked so
    // they outlive the EAL; 2. the `OnceLock` makes this the process's only `rte_eal_init`.
    let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if rc < 0 {
        // SAFETY: reads the calling thread's `rte_errno`, set by the failed call above.
        let errno = unsafe { dpdk_sys::pshim6_errno() };
        return Err(DpdkError::EalInit { errno });
    }
    Ok(())
}

/// Creates the virtual device `name` (e.g. `net_af_packet0`) with `args` (e.g.
/// `iface=veth0`) after the EAL started, like an EAL `--vdev=name,args`. A device that opens a
/// kernel interface (`net_af_packet`, `net_tap`) does so in the calling thread's network
/// namespace, which is how a test puts one process's ports into several namespaces.
#[cold]
pub fn attach_vdev(name: &str, args: &str) -> Result<(), DpdkError> {
    if !eal_ready() {
        return Err(DpdkError::NoEal);
    }
    let n = CString::new(name).map_err(|_| DpdkError::Config("NUL in vdev name"))?;
    let a = CString::new(args).map_err(|_| DpdkError::Config("NUL in vdev arguments"))?;
    // SAFETY: both are valid C strings for the duration of the call; the EAL is up.
    let rc = unsafe { dpdk_sys::rte_vdev_init(n.as_ptr(), a.as_ptr()) };
    if rc < 0 {
        return Err(DpdkError::Call {
            op: "rte_vdev_init",
            code: rc,
        });
    }
    Ok(())
}
