//! The input format of the stateful targets: a sequence of `[op, len, len bytes]` records
//! (the last record takes what is left if `len` overruns).

/// Splits `data` into `(op, bytes)` records.
pub fn records(data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (&op, tail) = rest.split_first()?;
        let (&len, tail) = tail.split_first().unwrap_or((&0, tail));
        let n = usize::from(len).min(tail.len());
        let (body, tail) = tail.split_at(n);
        rest = tail;
        Some((op, body))
    })
}

/// Encodes records (for the seed writer). Bodies longer than 255 bytes go last, uncut, as the
/// last record takes the rest.
pub fn encode(records: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (op, body) in records {
        out.push(*op);
        out.push(u8::try_from(body.len()).unwrap_or(255));
        out.extend_from_slice(body);
    }
    out
}
