//! Fixed RSA-1024 test keys (RSA key generation is slow; never use these outside tests).
//! Also included by `benches/handshake.rs`.

/// The throw-away test key of spec cga-hba.md §11.3.
pub(crate) static SITE_A_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALe/PBGyHWVjaYIp
cqVDKK7TUbw10odpWfouEzZaVz8QPqTL3Yym8ach07J2UfzB3FOKf4TlY39FkDal
IrNR49ffB0eVo3wscC/2R/rpIFHCw28vLkc3eLv6TjFNBEmRPEPqlPfK5pVWZoz3
ROXBJWFN/iE50boHm5dNcCL0nE/fAgMBAAECgYBy9e+0NpcTtxXs/NegtBsA/m+V
7KqyU+SalTcp+224pAY9fts3Q7/PTGexsTtsgzHBBtbvo8ETgMdQmRLT1HlSp/Ay
GbWJdg5E6Kqgh7flkT+Jew/y2l8zTJ+zhauKQ95s6QaDDXkBVECjBZktC7ggZjrf
WW+Sf/SQmusbRt0VqQJBANjy91brJ8ENqb4tPQxdfIWGMSa6l7u4xK8TFxb0xgav
kD9zKiLSTsHVrGCPfdwNpWV64lYKs6Mij0RHgajr9a0CQQDY0lBSDVCB407de9an
JVvnN2TWqfqgpF2jNQ7NVSjtcp47XynXVEjlIa4IuAyNzup9BhkyNt7WQlkJBFRW
0ZU7AkAYLAoO7yiAxArzm4q/w/LJ1cfILuYVDmMrto7OCfu+ZvVFfIlnU9NemXYZ
VCOLzyFsiyKIv6yAMquPyf/SWGgJAkATm9mlwgyA4rTUNQnxreBE5e6Zt1+yPYs2
YmsHSOddqhsDVZTsI3RAPK6HnVWNUaRFUFLhBrNafz+cICccfvHXAkEAm38RTSeE
o2MbKZvelAVaYLGDZ1SwxvOVuBCzPyQPJWpnDKSvU4h6kdW/ZoCAN98rQpnHufVJ
R6Q5l5odwmx5tQ==
-----END PRIVATE KEY-----
";

/// A second throw-away key (generated once with `openssl genpkey -algorithm RSA
/// -pkeyopt rsa_keygen_bits:1024`).
pub(crate) static SITE_B_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAMMfrZK6HerBKiq6
rf+Xf+fPlHySxL90d+hgzM1HxTKbk7GtB40w1aCYAh1tjH1egHHnuR+bBD9kgSm8
x+lA0fffNVnFPNvx0zPntqZiLaLVlFkuXpcHxMrlvS5HAtYqgLvUiFVmzdnUNpSS
bgm9StCRxQS6n1UftuKDcv6HWXJ/AgMBAAECgYAVlFtN7ueAHvza3OqBae/rYzm4
zUKVKfxY5tu/mEBm6G3dKJW9N7lomWciegsfkmQCNO50YGCH4kWmqAoz8cdGwSV0
HTn/FT8Dks4mHU12PMQEjlG5394ySHOfGCXVwoDUohw1ap3BYns8ELzE2GEPyejr
l+W3iz1u0yaEOUQfAQJBAOUEYm+BkCODQpOWbAqoXHJKUyUMz42lpSwFftLXU+cu
UC+8yYYzoLBqDuefFPsjhxmaYBQvby241bHyNl7DKIkCQQDaHQBIPEYuczvcQmKg
S4Ht8mIRkws8PQXYBoksymHBrScpAPeTEZrlwUViudlzZJjDldJlZuBCoQPBfbIg
YXDHAkEAxSwJM8dwuaKA52BSlLpvHVcwTm3BJErA8i2pCw2ohxkwoGkBeDFq33fw
bSphffcQkdJ/deGA7vR7x0Cp3txXQQJAXxf30Iae3o+VEKHM2DAzdKeRhDIE2v2L
97RZyDJwTn2Mrj7isbciPnt2IeX/XWUFiXhfo6AntET5GzoPGDkDbwJAKCngq8fy
ldxUO5TJzrh6ulkx+v3msoUM4HX5vd3BzZOh0xtV/NHU762++Lr2UUjVirzR7Nev
aQYRRNEcZ7zTFQ==
-----END PRIVATE KEY-----
";
