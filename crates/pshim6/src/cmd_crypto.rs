//! `pshim6 cga …`, `pshim6 hba …` and `pshim6 keygen`: thin wrappers over the `cga` crate.
//! Output formats are an interface (other tools parse `--json`); keep field names stable.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cga::{hba, SiteKey};
use rand::rngs::OsRng;
use serde::Serialize;

use crate::cli::{CgaGenerateArgs, CgaVerifyArgs, HbaGenerateArgs, KeygenArgs};

/// Highest Sec we generate: RFC 4982 registers only Sec 0–2, and the modifier search costs
/// about 2^(16·Sec) SHA-1 hashes (Sec 2: hours; Sec 3: decades).
const MAX_GENERATION_SEC: u8 = 2;

/// Refuses Sec values whose generation is unregistered or unaffordable, before any work.
fn check_sec(sec: u8) -> Result<()> {
    if sec > MAX_GENERATION_SEC {
        bail!(
            "Sec {sec} is not supported for generation: the modifier search costs about \
             2^(16*Sec) = 2^{} SHA-1 hashes; use Sec 0, 1 or 2",
            16 * u32::from(sec)
        );
    }
    Ok(())
}

fn load_key(path: &Path) -> Result<SiteKey> {
    let pem =
        fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    SiteKey::from_pkcs8_pem(&pem).with_context(|| format!("loading key {}", path.display()))
}

/// `--json` output of `cga generate`.
#[derive(Serialize)]
struct CgaJson {
    address: String,
    /// The whole CGA Parameters data structure, lower-case hex.
    parameters: String,
    sec: u8,
    prefix: String,
    modifier: String,
    collision_count: u8,
    key_bits: usize,
}

/// `pshim6 cga generate`: a CGA under `--prefix` with the site key or a fresh one.
pub(crate) fn cga_generate(args: &CgaGenerateArgs) -> Result<ExitCode> {
    check_sec(args.sec)?;
    let key = match &args.key {
        Some(path) => load_key(path)?,
        None => SiteKey::generate(args.bits, &mut OsRng).context("generating an RSA key")?,
    };
    let (address, params) = cga::generate(
        key.public_key_der(),
        args.prefix.0,
        args.sec,
        &[],
        &mut OsRng,
    )
    .context("generating the CGA")?;
    let out = CgaJson {
        address: address.to_string(),
        parameters: hex::encode(params.to_bytes()),
        sec: args.sec,
        prefix: args.prefix.to_text(),
        modifier: hex::encode(params.modifier),
        collision_count: params.collision_count,
        key_bits: key.bits(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("address:         {}", out.address);
        println!("sec:             {}", out.sec);
        println!("prefix:          {}", out.prefix);
        println!("modifier:        {}", out.modifier);
        println!("collision count: {}", out.collision_count);
        println!("key bits:        {}", out.key_bits);
        println!("parameters:      {}", out.parameters);
    }
    Ok(ExitCode::SUCCESS)
}

/// `pshim6 cga verify`: exit 0 and `valid`, or exit 1 and the reason.
pub(crate) fn cga_verify(args: &CgaVerifyArgs) -> Result<ExitCode> {
    let address: Ipv6Addr = args
        .address
        .trim()
        .parse()
        .with_context(|| format!("--address `{}` is not an IPv6 address", args.address))?;
    let params = hex::decode(args.parameters.trim()).context("--parameters is not valid hex")?;
    match cga::verify_bytes(address, &params) {
        Ok(()) => {
            println!("valid");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("invalid: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `--json` output of `hba generate`; the arrays are aligned by index.
#[derive(Serialize)]
struct HbaJson {
    sec: u8,
    /// P flag: a real key is in the parameters, so members are also CGAs.
    cga_compatible: bool,
    prefixes: Vec<String>,
    addresses: Vec<String>,
    /// One hex PDS per address (its own prefix in the Subnet Prefix field).
    parameters: Vec<String>,
}

/// `pshim6 hba generate`: a pure HBA set, or a CGA-compatible one with `--key`.
pub(crate) fn hba_generate(args: &HbaGenerateArgs) -> Result<ExitCode> {
    check_sec(args.sec)?;
    let key = args.key.as_deref().map(load_key).transpose()?;
    let prefixes: Vec<[u8; 8]> = args.prefixes.iter().map(|p| p.0).collect();
    let set = hba::generate_set(
        &prefixes,
        args.sec,
        key.as_ref().map(SiteKey::public_key_der),
        &mut OsRng,
    )
    .context("generating the HBA set")?;
    let out = HbaJson {
        sec: args.sec,
        cga_compatible: key.is_some(),
        prefixes: args.prefixes.iter().map(|p| p.to_text()).collect(),
        addresses: set.addresses.iter().map(ToString::to_string).collect(),
        parameters: set
            .parameters
            .iter()
            .map(|p| hex::encode(p.to_bytes()))
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let kind = if out.cga_compatible {
            "CGA-compatible"
        } else {
            "pure HBA"
        };
        println!("HBA set, sec {}, {kind}", out.sec);
        for ((prefix, address), params) in
            out.prefixes.iter().zip(&out.addresses).zip(&out.parameters)
        {
            println!("prefix:     {prefix}");
            println!("address:    {address}");
            println!("parameters: {params}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `contents` to a new file created with mode 0600 (never readable by others, not even
/// between creation and a chmod). `create_new` makes the no-overwrite check race-free.
fn write_new_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// `pshim6 keygen`: the site key pair as PKCS#8 PEM, mode 0600; `--force` replaces an existing
/// file atomically (a fresh 0600 file renamed over it, so the old mode is not inherited).
pub(crate) fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let exists = || format!("{} exists; use --force to replace it", args.out.display());
    if !args.force && args.out.symlink_metadata().is_ok() {
        bail!(exists()); // fail before the slow key generation
    }
    let key = SiteKey::generate(args.bits, &mut OsRng).context("generating the RSA key")?;
    let pem = key.to_pkcs8_pem()?;
    if args.force {
        let name = args
            .out
            .file_name()
            .context("--out has no file name")?
            .to_string_lossy();
        let tmp = args
            .out
            .with_file_name(format!(".{name}.tmp{}", std::process::id()));
        write_new_private(&tmp, pem.as_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
        if let Err(e) = fs::rename(&tmp, &args.out) {
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("replacing {}", args.out.display()));
        }
    } else {
        write_new_private(&args.out, pem.as_bytes()).map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => anyhow::anyhow!(exists()),
            _ => anyhow::Error::new(e).context(format!("writing {}", args.out.display())),
        })?;
    }
    println!("wrote {}-bit RSA key to {}", key.bits(), args.out.display());
    Ok(ExitCode::SUCCESS)
}
