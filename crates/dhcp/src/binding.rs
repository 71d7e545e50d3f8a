//! A client's binding: which CMULA an IA_NA holds, how to re-create it (CGA modifier and
//! collision count), its lease times and its locators. Also the binding's byte encoding, the
//! payload of a journal record.

use std::net::Ipv6Addr;

use cga::CgaParameters;

use crate::config::{MAX_DUID_LEN, MIN_DUID_LEN};
use crate::{DhcpError, Prefix64};

/// The key of a binding: the client's DUID and the IAID of its IA_NA
/// ([RFC 8415 §12](https://www.rfc-editor.org/rfc/rfc8415#section-12)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    /// Client DUID, opaque (RFC 8415 §11: compared for equality only).
    pub duid: Vec<u8>,
    /// Identity Association identifier.
    pub iaid: u32,
}

/// Where a binding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingState {
    /// Advertised in answer to a Solicit, not yet requested.
    Offered,
    /// Committed by a Reply (Request, Renew, Rebind or Rapid Commit).
    Bound,
    /// The client declined the address (duplicate on the link,
    /// [RFC 8415 §18.3.8](https://www.rfc-editor.org/rfc/rfc8415#section-18.3.8)); the next
    /// grant makes a new address.
    Declined,
}

impl BindingState {
    fn code(self) -> u8 {
        match self {
            Self::Offered => 1,
            Self::Bound => 2,
            Self::Declined => 3,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Self::Offered),
            2 => Some(Self::Bound),
            3 => Some(Self::Declined),
            _ => None,
        }
    }

    /// Lower-case name, for dumps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::Bound => "bound",
            Self::Declined => "declined",
        }
    }
}

/// Most declined addresses remembered per binding (each decline moves the client on).
pub const MAX_DECLINED: usize = 8;

/// One IA_NA's binding. `address` is the CGA of (`modifier`, `collision_count`, `sec`) with the
/// site key under `prefix`, so the binding alone re-creates and proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Whose binding.
    pub client: ClientKey,
    /// CGA modifier after the Sec search ([RFC 3972 §4](https://www.rfc-editor.org/rfc/rfc3972#section-4)).
    pub modifier: [u8; 16],
    /// The ULID /64 the address was made under.
    pub prefix: Prefix64,
    /// CGA collision count (0..=2).
    pub collision_count: u8,
    /// CGA security parameter the address encodes.
    pub sec: u8,
    /// The CMULA (the host's ULID).
    pub address: Ipv6Addr,
    /// The host's locators: each PA prefix with the CMULA's interface identifier.
    pub locators: Vec<Ipv6Addr>,
    /// Lease state.
    pub state: BindingState,
    /// End of the valid lifetime, seconds since the Unix epoch.
    pub valid_until: u64,
    /// End of the preferred lifetime, seconds since the Unix epoch.
    pub preferred_until: u64,
    /// Addresses this client declined: never handed out again.
    pub declined: Vec<Ipv6Addr>,
    /// From the configuration: never journaled, released or evicted.
    pub fixed: bool,
}

impl Binding {
    /// The CGA Parameters that prove `address` ([RFC 3972 §3](https://www.rfc-editor.org/rfc/rfc3972#section-3));
    /// `public_key_der` is the site key's SubjectPublicKeyInfo.
    pub fn cga_parameters(&self, public_key_der: &[u8]) -> CgaParameters {
        CgaParameters {
            modifier: self.modifier,
            subnet_prefix: self.prefix.0,
            collision_count: self.collision_count,
            public_key: public_key_der.to_vec(),
            extensions: Vec::new(),
        }
    }

    /// Whether the valid lifetime is over at `now` (Unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        self.valid_until <= now
    }

    /// Appends the record encoding: `duid-len(1) duid iaid(4) modifier(16) prefix(8) cc(1)
    /// sec(1) address(16) state(1) valid-until(8) preferred-until(8) n(1) locators(16n)
    /// m(1) declined(16m)`.
    /// The shared store (etcd) uses it as the value of a binding's key.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), DhcpError> {
        encode_key(&self.client, out)?;
        out.extend_from_slice(&self.modifier);
        out.extend_from_slice(&self.prefix.0);
        out.push(self.collision_count);
        out.push(self.sec);
        out.extend_from_slice(&self.address.octets());
        out.push(self.state.code());
        out.extend_from_slice(&self.valid_until.to_be_bytes());
        out.extend_from_slice(&self.preferred_until.to_be_bytes());
        encode_addrs(&self.locators, out, "locators")?;
        encode_addrs(&self.declined, out, "declined addresses")
    }

    /// Parses [`Self::encode`]'s output; `None` if it is malformed or has trailing bytes.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let client = decode_key_from(&mut r)?;
        let binding = Self {
            client,
            modifier: r.array()?,
            prefix: Prefix64(r.array()?),
            collision_count: r.u8()?,
            sec: r.u8()?,
            address: Ipv6Addr::from(r.array::<16>()?),
            state: BindingState::from_code(r.u8()?)?,
            valid_until: u64::from_be_bytes(r.array()?),
            preferred_until: u64::from_be_bytes(r.array()?),
            locators: r.addrs()?,
            declined: r.addrs()?,
            fixed: false,
        };
        r.0.is_empty().then_some(binding)
    }
}

fn encode_addrs(
    addrs: &[Ipv6Addr],
    out: &mut Vec<u8>,
    what: &'static str,
) -> Result<(), DhcpError> {
    let n = u8::try_from(addrs.len()).map_err(|_| DhcpError::RecordTooLarge(what))?;
    out.push(n);
    for a in addrs {
        out.extend_from_slice(&a.octets());
    }
    Ok(())
}

/// Appends `duid-len(1) duid iaid(4)`.
pub(crate) fn encode_key(key: &ClientKey, out: &mut Vec<u8>) -> Result<(), DhcpError> {
    if !(MIN_DUID_LEN..=MAX_DUID_LEN).contains(&key.duid.len()) {
        return Err(DhcpError::RecordTooLarge("DUID"));
    }
    out.push(key.duid.len() as u8);
    out.extend_from_slice(&key.duid);
    out.extend_from_slice(&key.iaid.to_be_bytes());
    Ok(())
}

/// Parses exactly one [`encode_key`] encoding.
pub(crate) fn decode_key(bytes: &[u8]) -> Option<ClientKey> {
    let mut r = Reader(bytes);
    let key = decode_key_from(&mut r)?;
    r.0.is_empty().then_some(key)
}

fn decode_key_from(r: &mut Reader<'_>) -> Option<ClientKey> {
    let len = usize::from(r.u8()?);
    if !(MIN_DUID_LEN..=MAX_DUID_LEN).contains(&len) {
        return None;
    }
    let duid = r.take(len)?.to_vec();
    let iaid = u32::from_be_bytes(r.array()?);
    Some(ClientKey { duid, iaid })
}

/// A cursor over untrusted bytes: every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn addrs(&mut self) -> Option<Vec<Ipv6Addr>> {
        let n = self.u8()?;
        (0..n)
            .map(|_| self.array::<16>().map(Ipv6Addr::from))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> Binding {
        Binding {
            client: ClientKey {
                duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
                iaid: 1,
            },
            modifier: [7; 16],
            prefix: "fc00:1:2:3::/64".parse().unwrap(),
            collision_count: 1,
            sec: 0,
            address: "fc00:1:2:3:1c2d:3e4f:5a6b:7c8d".parse().unwrap(),
            locators: vec!["2001:db8:a:1:1c2d:3e4f:5a6b:7c8d".parse().unwrap()],
            state: BindingState::Bound,
            valid_until: 1_700_000_000,
            preferred_until: 1_699_990_000,
            declined: vec!["fc00:1:2:3::dead".parse().unwrap()],
            fixed: false,
        }
    }

    #[test]
    fn record_bytes_are_pinned() {
        let mut out = Vec::new();
        sample().encode(&mut out).unwrap();
        // duid-len, duid, iaid
        assert_eq!(&out[..15], &[10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(&out[15..31], &[7; 16]);
        assert_eq!(&out[31..39], &[0xfc, 0, 0, 1, 0, 2, 0, 3]);
        assert_eq!((out[39], out[40]), (1, 0));
        assert_eq!(out[57], 2, "state Bound");
        assert_eq!(out.len(), 15 + 16 + 8 + 2 + 16 + 1 + 16 + 1 + 16 + 1 + 16);
        assert_eq!(Binding::decode(&out), Some(sample()));
        // Any shorter or longer input is refused.
        for cut in 0..out.len() {
            assert_eq!(Binding::decode(&out[..cut]), None, "cut at {cut}");
        }
        out.push(0);
        assert_eq!(Binding::decode(&out), None);
    }

    #[test]
    fn parameters_prove_a_generated_address() {
        let der = crate::test_key::public_der();
        let prefix: Prefix64 = "fc00:1:2:3::/64".parse().unwrap();
        let (address, params) =
            cga::generate_from_modifier(der, prefix.0, 0, &[], [3; 16], 1).unwrap();
        let b = Binding {
            modifier: params.modifier,
            collision_count: 1,
            address,
            ..sample()
        };
        assert_eq!(b.cga_parameters(der), params);
        cga::verify(address, &b.cga_parameters(der)).unwrap();
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Binding::decode(&bytes);
            let _ = decode_key(&bytes);
        }

        #[test]
        fn round_trip(duid in proptest::collection::vec(any::<u8>(), 3..130), iaid: u32,
                      modifier: [u8; 16], cc in 0u8..3, valid: u64, n in 0usize..4) {
            let b = Binding {
                client: ClientKey { duid, iaid },
                modifier,
                collision_count: cc,
                valid_until: valid,
                locators: vec![Ipv6Addr::LOCALHOST; n],
                ..sample()
            };
            let mut out = Vec::new();
            b.encode(&mut out).unwrap();
            prop_assert_eq!(Binding::decode(&out), Some(b));
        }
    }
}
