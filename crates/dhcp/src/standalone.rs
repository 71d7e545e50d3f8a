//! The server on kernel sockets, for `pshim6 dhcp --interface IF` and the tests: UDP port 547
//! bound to the interface and joined to All_DHCP_Relay_Agents_and_Servers (ff02::1:2,
//! [RFC 8415 §7.1](https://www.rfc-editor.org/rfc/rfc8415#section-7.1)), plus a raw ICMPv6
//! socket for Router Advertisements. In the appliance (`pshim6 run`) the same [`DhcpServer`]
//! runs on the slow path instead (UDP through its `LocalServices`; RAs from its ND).

use std::io::Read;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::ra::{build_router_advertisement, is_router_solicitation, RaSchedule};
use crate::store::{BindingStore, JournalStore};
use crate::{Counters, DhcpConfig, DhcpError, DhcpServer, ServerIdentity};

/// ff02::1:2, All_DHCP_Relay_Agents_and_Servers.
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// The server port.
pub const SERVER_PORT: u16 = 547;
/// How often blocked reads wake up to look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// What the runner needs to know about its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Interface name.
    pub name: String,
    /// Kernel interface index (the scope of link-local addresses).
    pub index: u32,
    /// Ethernet address, when it has one.
    pub mac: Option<[u8; 6]>,
}

/// Reads the index and MAC address of `name` from sysfs.
pub fn interface_info(name: &str) -> Result<InterfaceInfo, DhcpError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(DhcpError::Config(format!("bad interface name `{name}`")));
    }
    let dir = Path::new("/sys/class/net").join(name);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).map_err(|e| {
            DhcpError::io(
                format!("reading {}/{f} (no such interface?)", dir.display()),
                e,
            )
        })
    };
    let index = read("ifindex")?
        .trim()
        .parse()
        .map_err(|_| DhcpError::Config(format!("{name}: unreadable ifindex")))?;
    let mac = read("address").ok().and_then(|s| parse_mac(s.trim()));
    Ok(InterfaceInfo {
        name: name.to_owned(),
        index,
        mac,
    })
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    (parts.next().is_none() && mac != [0; 6]).then_some(mac)
}

fn dhcp_socket(ifc: &InterfaceInfo) -> Result<UdpSocket, DhcpError> {
    let io = |what: &'static str| {
        move |e| DhcpError::io(format!("DHCPv6 socket on {}: {what}", ifc.name), e)
    };
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).map_err(io("socket"))?;
    s.set_only_v6(true).map_err(io("IPV6_V6ONLY"))?;
    s.set_reuse_address(true).map_err(io("SO_REUSEADDR"))?;
    s.bind_device(Some(ifc.name.as_bytes()))
        .map_err(io("SO_BINDTODEVICE"))?;
    let any = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, SERVER_PORT, 0, 0);
    s.bind(&any.into()).map_err(io("bind [::]:547"))?;
    s.join_multicast_v6(&ALL_DHCP_RELAY_AGENTS_AND_SERVERS, ifc.index)
        .map_err(io("joining ff02::1:2"))?;
    s.set_read_timeout(Some(POLL)).map_err(io("SO_RCVTIMEO"))?;
    Ok(s.into())
}

fn icmp_socket(ifc: &InterfaceInfo) -> Result<Socket, DhcpError> {
    let io = |what: &'static str| {
        move |e| DhcpError::io(format!("ICMPv6 socket on {}: {what}", ifc.name), e)
    };
    let s =
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).map_err(io("raw socket"))?;
    s.bind_device(Some(ifc.name.as_bytes()))
        .map_err(io("SO_BINDTODEVICE"))?;
    // RFC 4861 §6.1.2: hosts drop RAs whose hop limit is not 255.
    s.set_multicast_hops_v6(255)
        .map_err(io("IPV6_MULTICAST_HOPS"))?;
    s.set_unicast_hops_v6(255)
        .map_err(io("IPV6_UNICAST_HOPS"))?;
    s.set_multicast_if_v6(ifc.index)
        .map_err(io("IPV6_MULTICAST_IF"))?;
    s.set_multicast_loop_v6(false)
        .map_err(io("IPV6_MULTICAST_LOOP"))?;
    // Router Solicitations go to all-routers (ff02::2), which a host-mode interface has not joined.
    s.join_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2), ifc.index)
        .map_err(io("joining ff02::2"))?;
    Ok(s)
}

/// Sends periodic and solicited RAs until `stop`.
fn ra_loop(
    sock: &Socket,
    ifc: &InterfaceInfo,
    message: &[u8],
    interval: Duration,
    stop: &AtomicBool,
    log: &(dyn Fn(&str) + Sync),
) {
    let mut rng = rand::thread_rng();
    let mut schedule = RaSchedule::new(Instant::now(), interval);
    let dest: SockAddr =
        SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifc.index).into();
    let mut buf = [0u8; 1500];
    let mut send_failures = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if schedule.handle_timeout(now, rng.gen()) {
            if let Err(e) = sock.send_to(message, &dest) {
                // Typically the link-local address is still tentative: retry on schedule.
                send_failures += 1;
                if send_failures.is_power_of_two() {
                    log(&format!(
                        "RA on {}: {e} ({send_failures} failures)",
                        ifc.name
                    ));
                }
            }
        }
        let wait = schedule
            .poll_timeout()
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), POLL);
        if sock.set_read_timeout(Some(wait)).is_err() {
            std::thread::sleep(wait);
            continue;
        }
        if let Ok(n) = (&*sock).read(&mut buf) {
            if buf.get(..n).is_some_and(is_router_solicitation) {
                schedule.on_solicit(Instant::now(), rng.gen());
            }
        }
    }
}

/// Runs the DHCPv6 server (and, when configured, Router Advertisements) on `interface` until
/// `stop` is set; returns the counters. Journal warnings and send errors go to `log`.
pub fn run(
    interface: &str,
    cfg: DhcpConfig,
    stop: &AtomicBool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Counters, DhcpError> {
    let ifc = interface_info(interface)?;
    let pem = std::fs::read_to_string(&cfg.site_key)
        .map_err(|e| DhcpError::io(format!("reading site key {}", cfg.site_key.display()), e))?;
    let key = cga::SiteKey::from_pkcs8_pem(&pem)?;
    let (store, report) = JournalStore::open(&cfg.journal)?;
    for w in &report.warnings {
        log(&format!("warning: {w}"));
    }
    let identity = ifc
        .mac
        .map_or(ServerIdentity::Uuid, ServerIdentity::LinkLayerTime);
    let ra_message = cfg
        .ra
        .enabled
        .then(|| build_router_advertisement(&cfg.ra, cfg.ulid_prefix, &cfg.dns_servers, ifc.mac));
    let ra_interval = Duration::from_secs(u64::from(cfg.ra.interval));
    let mut server = DhcpServer::new(
        cfg,
        key.public_key_der(),
        store,
        identity,
        rand::thread_rng().gen(),
        SystemTime::now(),
    )?;
    let udp = dhcp_socket(&ifc)?;
    let icmp = ra_message.as_ref().map(|_| icmp_socket(&ifc)).transpose()?;
    log(&format!(
        "serving DHCPv6 on {} ({} bindings, server DUID {})",
        ifc.name,
        server.bindings().count(),
        hex::encode(server.server_duid())
    ));
    std::thread::scope(|scope| {
        if let (Some(sock), Some(msg)) = (&icmp, &ra_message) {
            let ifc = &ifc;
            scope.spawn(move || ra_loop(sock, ifc, msg, ra_interval, stop, log));
        }
        serve(&udp, &mut server, stop, log);
    });
    Ok(*server.counters())
}

fn serve<S: BindingStore>(
    udp: &UdpSocket,
    server: &mut DhcpServer<S>,
    stop: &AtomicBool,
    log: &(dyn Fn(&str) + Sync),
) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match udp.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                log(&format!("DHCPv6 receive: {e}"));
                std::thread::sleep(POLL);
                continue;
            }
        };
        let SocketAddr::V6(from) = from else { continue };
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        if let Some(reply) = server.handle(SystemTime::now(), *from.ip(), datagram) {
            if let Err(e) = udp.send_to(&reply, from) {
                log(&format!("DHCPv6 send to {from}: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("02:00:00:00:00:aa"), Some([2, 0, 0, 0, 0, 0xaa]));
        assert_eq!(
            parse_mac("00:00:00:00:00:00"),
            None,
            "loopback has no usable MAC"
        );
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:aa:bb"), None);
    }

    #[test]
    fn loopback_info_and_bad_names() {
        let lo = interface_info("lo").unwrap();
        assert_eq!(lo.index, 1);
        assert_eq!(lo.mac, None);
        assert!(interface_info("../etc").is_err());
        assert!(interface_info("no-such-if0").is_err());
    }
}
