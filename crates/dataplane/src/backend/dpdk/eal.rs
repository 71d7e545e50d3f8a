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
    let before = thread_affinity();
    // SAFETY: 1. `argv` holds `argc` valid NUL-terminated strings followed by NULL, leaked so
    // they outlive the EAL; 2. the `OnceLock` makes this the process's only `rte_eal_init`.
    let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    // The EAL pins the calling thread to the main lcore's core (`-l 0`: core 0), and every
    // thread created afterwards inherits that: unpinned workers, the slow path and the API
    // would all share one core. pshim6 places its own threads (workers pinned per
    // `worker_cores`), so the caller gets its affinity back; `rte_lcore_id()` is
    // thread-local and does not depend on it.
    if let Some(set) = before {
        set_thread_affinity(&set);
    }
    if rc < 0 {
        // SAFETY: reads the calling thread's `rte_errno`, set by the failed call above.
        let errno = unsafe { dpdk_sys::pshim6_errno() };
        return Err(DpdkError::EalInit { errno });
    }
    Ok(())
}

/// The calling thread's CPU affinity mask, if the kernel tells.
fn thread_affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set, and `sched_getaffinity` writes
    // at most `size_of::<cpu_set_t>()` bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (rc == 0).then_some(set)
    }
}

/// Sets the calling thread's CPU affinity mask (best effort: a refusal leaves it as it was).
fn set_thread_affinity(set: &libc::cpu_set_t) {
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed; pid 0 is the calling thread.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
    }
}

/// CPUs in the calling thread's affinity mask (what a thread it creates may run on).
pub fn allowed_cpus() -> Vec<usize> {
    let Some(set) = thread_affinity() else {
        return Vec::new();
    };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `CPU_ISSET` reads bit `i` of a valid set, `i` below CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
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

/// This thread's lcore id, `None` for a thread the EAL does not know (its mempool allocs and
/// frees then bypass the per-lcore caches and hit the shared ring every time).
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads the calling thread's per-lcore variable; no other effect.
    u32::try_from(unsafe { dpdk_sys::pshim6_lcore_id() }).ok()
}

/// Registers the calling thread as an lcore (`rte_thread_register`), unless it is one already
/// (the EAL main thread, an earlier call). Returns its lcore id. Fails when the EAL is down,
/// multi-process is in use, or every lcore id (`RTE_MAX_LCORE`) is taken.
#[cold]
pub fn register_thread() -> Result<u32, DpdkError> {
    if !eal_ready() {
        return Err(DpdkError::NoEal);
    }
    // SAFETY: the EAL is up; registers the calling thread only.
    let rc = unsafe { dpdk_sys::pshim6_thread_register() };
    u32::try_from(rc).map_err(|_| DpdkError::Call {
        op: "rte_thread_register",
        code: rc,
    })
}

/// Releases the calling thread's lcore id (`rte_thread_unregister`). Mbufs in that lcore's
/// mempool caches stay there for the next thread given the same id.
#[cold]
pub fn unregister_thread() {
    if eal_ready() {
        // SAFETY: the EAL is up; acts on the calling thread only (a no-op without an lcore).
        unsafe { dpdk_sys::pshim6_thread_unregister() }
    }
}

/// Creates two ring-backed ports wired back to back with `queues` queue pairs of `ring_size`
/// slots each: what the first transmits on queue `q`, the second receives on queue `q`, and
/// back. The in-process "cable" of the DPDK pipeline benchmark. The ring driver names them
/// `net_ring_{a}` and `net_ring_{b}`, the names returned.
#[cold]
pub fn ring_port_pair(
    a: &str,
    b: &str,
    queues: u16,
    ring_size: u32,
) -> Result<(String, String), DpdkError> {
    if !eal_ready() {
        return Err(DpdkError::NoEal);
    }
    if !ring_size.is_power_of_two() || queues == 0 {
        return Err(DpdkError::Config(
            "ring ports: ring size a power of two, at least one queue",
        ));
    }
    let ca = CString::new(a).map_err(|_| DpdkError::Config("NUL in port name"))?;
    let cb = CString::new(b).map_err(|_| DpdkError::Config("NUL in port name"))?;
    let (mut pa, mut pb) = (0u16, 0u16);
    // SAFETY: valid C strings and out-pointers for the duration of the call; the EAL is up.
    let rc = unsafe {
        dpdk_sys::pshim6_ring_port_pair(
            ca.as_ptr(),
            cb.as_ptr(),
            queues,
            ring_size,
            -1,
            &mut pa,
            &mut pb,
        )
    };
    if rc < 0 {
        return Err(DpdkError::Call {
            op: "rte_eth_from_rings",
            code: rc,
        });
    }
    Ok((format!("net_ring_{a}"), format!("net_ring_{b}")))
}
