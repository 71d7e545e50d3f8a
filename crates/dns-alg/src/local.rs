//! Answers the ALG gives itself, without asking upstream: the site's own hosts (name →
//! CMULA, and their PTRs) and the debug view of the locator cache.

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::{AAAA, PTR, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use wire::Ulid;

use crate::cache::CacheEntry;
use crate::msg::{response, ClientQuery};

/// Name of the debug view of the locator cache. A CHAOS-class TXT query for it
/// (`dig @ALG -c CH -t TXT cache.pshim6.`) is answered with one TXT record per live cache
/// entry, whose strings are the ULID, `ttl=SECONDS` (lifetime left), then each locator.
pub const CACHE_VIEW_NAME: &str = "cache.pshim6.";

/// Whether `q` asks for the cache view.
pub(crate) fn is_cache_view(q: &Query) -> bool {
    q.query_class() == DNSClass::CH
        && q.query_type() == RecordType::TXT
        && Name::from_ascii(CACHE_VIEW_NAME).is_ok_and(|n| *q.name() == n)
}

/// The cache view: one CH TXT record per entry, TTL 0 (never to be cached).
pub(crate) fn cache_view(q: &ClientQuery, entries: &[CacheEntry], payload: u16) -> Message {
    let mut r = response(q, ResponseCode::NoError, payload);
    r.metadata.authoritative = true;
    for e in entries {
        let mut strings = vec![e.ulid.to_string(), format!("ttl={}", e.remaining.as_secs())];
        strings.extend(e.locators.iter().map(ToString::to_string));
        let mut rec = Record::from_rdata(q.query.name().clone(), 0, RData::TXT(TXT::new(strings)));
        rec.dns_class = DNSClass::CH;
        r.add_answer(rec);
    }
    r
}

/// An answer about one of the site's hosts: its CMULAs for AAAA (and ANY), an empty
/// authoritative answer (NODATA) for every other type.
pub(crate) fn host_answer(q: &ClientQuery, ulids: &[Ulid], ttl: u32, payload: u16) -> Message {
    let mut r = response(q, ResponseCode::NoError, payload);
    r.metadata.authoritative = true;
    if matches!(q.query.query_type(), RecordType::AAAA | RecordType::ANY) {
        for u in ulids {
            r.add_answer(Record::from_rdata(
                q.query.name().clone(),
                ttl,
                RData::AAAA(AAAA(u.0)),
            ));
        }
    }
    r
}

/// The PTR of one of the site's CMULAs.
pub(crate) fn host_ptr(q: &ClientQuery, target: &Name, ttl: u32, payload: u16) -> Message {
    let mut r = response(q, ResponseCode::NoError, payload);
    r.metadata.authoritative = true;
    r.add_answer(Record::from_rdata(
        q.query.name().clone(),
        ttl,
        RData::PTR(PTR(target.clone())),
    ));
    r
}
