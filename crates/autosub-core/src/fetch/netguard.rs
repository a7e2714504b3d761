//! Which links and addresses may be fetched: a pure classifier over URLs and IP addresses.
//!
//! A link from a stranger must not make the server talk to itself, its private network or a cloud metadata
//! service (server-side request forgery). [`check_url`] refuses anything but plain `http`/`https` links to
//! public hosts; [`check_host`] is the same check for one host and port, used by the [proxy](super::proxy) for
//! every connection yt-dlp makes (redirects and links found in pages included). Names are resolved through a
//! [`Resolver`] (the system's in production, a fixed table in tests), and every resolved address must pass.
//! Addresses listed in [`Policy::allow`] pass whatever their range (tests allow `127.0.0.1`).

use super::FetchError;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// Longest link accepted, in bytes.
pub const MAX_URL_LEN: usize = 4096;

/// Turns a host name into addresses.
pub trait Resolver: Send + Sync {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo` through [`ToSocketAddrs`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

/// A fixed table of names (for tests, or pinning names in configuration). Unknown names do not resolve.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds `name` (compared case-insensitively) resolving to `addrs`.
    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.names.insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
        self.names
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "Name or service not known")
            })
    }
}

/// One exception to the address rules: an address (any port) or an address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allow {
    Ip(IpAddr),
    Addr(SocketAddr),
}

impl FromStr for Allow {
    type Err = FetchError;
    /// Accepts `127.0.0.1`, `::1`, `[::1]`, `127.0.0.1:8080` and `[::1]:8080`.
    fn from_str(s: &str) -> Result<Self, FetchError> {
        let t = s.trim();
        if let Ok(a) = t.parse::<SocketAddr>() {
            return Ok(Allow::Addr(a));
        }
        let bare = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(t);
        bare.parse::<IpAddr>().map(Allow::Ip).map_err(|_| {
            FetchError::InvalidUrl(format!(
                "not an address for the fetch allow-list: {s:?} (use an IP address, optionally with :port)"
            ))
        })
    }
}

/// Which addresses may be fetched from besides public ones. The default allows none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow: Vec<Allow>,
}

impl Policy {
    /// A policy allowing the listed addresses (see [`Allow`] for the forms).
    pub fn allowing<S: AsRef<str>>(list: &[S]) -> Result<Policy, FetchError> {
        Ok(Policy {
            allow: list
                .iter()
                .map(|s| s.as_ref().parse())
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether `addr` is on the allow-list (exactly: `127.0.0.1` does not allow `::ffff:127.0.0.1` or `::1`).
    pub fn is_allowed(&self, addr: SocketAddr) -> bool {
        self.allow.iter().any(|a| match a {
            Allow::Ip(ip) => *ip == addr.ip(),
            Allow::Addr(sa) => *sa == addr,
        })
    }

    /// `None` when `addr` may be connected to, otherwise why not.
    pub fn refusal(&self, addr: SocketAddr) -> Option<String> {
        if self.is_allowed(addr) {
            None
        } else {
            classify(addr.ip())
        }
    }
}

/// Why `ip` must not be fetched from, or `None` for an ordinary public address.
pub fn classify(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map(str::to_owned),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const METADATA: [[u8; 4]; 4] = [
        [169, 254, 169, 254], // AWS, GCP, Azure, OpenStack, ...
        [169, 254, 170, 2],   // AWS ECS task metadata
        [100, 100, 100, 200], // Alibaba Cloud
        [168, 63, 129, 16],   // Azure wire server
    ];
    if METADATA.iter().any(|m| ip.octets() == *m) {
        return Some("cloud metadata address");
    }
    let table: &[([u8; 4], u32, &'static str)] = &[
        ([0, 0, 0, 0], 32, "unspecified address"),
        ([0, 0, 0, 0], 8, "\"this network\" address (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private network address"),
        (
            [100, 64, 0, 0],
            10,
            "shared address space (carrier-grade NAT, 100.64.0.0/10)",
        ),
        ([127, 0, 0, 0], 8, "loopback address"),
        ([169, 254, 0, 0], 16, "link-local address"),
        ([172, 16, 0, 0], 12, "private network address"),
        (
            [192, 0, 0, 0],
            24,
            "reserved address (IETF protocol assignments)",
        ),
        ([192, 0, 2, 0], 24, "documentation address (TEST-NET-1)"),
        (
            [192, 88, 99, 0],
            24,
            "reserved address (6to4 relay anycast)",
        ),
        ([192, 168, 0, 0], 16, "private network address"),
        ([198, 18, 0, 0], 15, "benchmarking address"),
        ([198, 51, 100, 0], 24, "documentation address (TEST-NET-2)"),
        ([203, 0, 113, 0], 24, "documentation address (TEST-NET-3)"),
        ([224, 0, 0, 0], 4, "multicast address"),
        ([255, 255, 255, 255], 32, "broadcast address"),
        ([240, 0, 0, 0], 4, "reserved address (240.0.0.0/4)"),
    ];
    table
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: u128, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(ip) & mask == net & mask
}

fn v4_at(bits: u128, shift: u32) -> Ipv4Addr {
    Ipv4Addr::from((bits >> shift) as u32)
}

fn classify_v6(ip: Ipv6Addr) -> Option<String> {
    let bits = u128::from(ip);
    let embedded = |v4: Ipv4Addr, form: &str| -> Option<String> {
        classify_v4(v4).map(|why| format!("{why} ({v4} inside {form})"))
    };
    if ip.is_unspecified() {
        return Some("unspecified address".into());
    }
    if ip.is_loopback() {
        return Some("loopback address".into());
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some("cloud metadata address".into());
    }
    // ::ffff:a.b.c.d: the IPv4 address itself on a dual-stack socket.
    if in_v6(ip, 0xffff_0000_0000, 96) {
        return embedded(v4_at(bits, 0), "an IPv4-mapped IPv6 address");
    }
    // ::a.b.c.d (deprecated IPv4-compatible form).
    if in_v6(ip, 0, 96) {
        return Some(
            embedded(v4_at(bits, 0), "an IPv4-compatible IPv6 address").unwrap_or_else(|| {
                "reserved address (deprecated IPv4-compatible IPv6 form)".into()
            }),
        );
    }
    // 64:ff9b::/96 NAT64: reaches the embedded IPv4 address through the network's translator.
    if in_v6(ip, 0x0064_ff9b << 96, 96) {
        return embedded(v4_at(bits, 0), "a NAT64 address");
    }
    if in_v6(ip, 0x0064_ff9b_0001 << 80, 48) {
        return Some("local-use NAT64 address".into());
    }
    // 2001::/32 Teredo: server IPv4 in bits 64..96, client IPv4 inverted in the last 32 bits.
    if in_v6(ip, 0x2001_0000 << 96, 32) {
        let server = v4_at(bits, 64);
        let client = Ipv4Addr::from(!(bits as u32));
        return embedded(client, "a Teredo address")
            .or_else(|| embedded(server, "a Teredo address (server part)"));
    }
    // 2002::/16 6to4: the IPv4 address in bits 80..112.
    if in_v6(ip, 0x2002 << 112, 16) {
        return embedded(v4_at(bits, 80), "a 6to4 address");
    }
    let table: &[(u128, u32, &str)] = &[
        (0x0100 << 112, 64, "discard-only address"),
        (
            0x2001 << 112,
            23,
            "reserved address (IETF protocol assignments)",
        ),
        (0x2001_0db8 << 96, 32, "documentation address"),
        (0x3fff << 112, 20, "documentation address"),
        (0x5f00 << 112, 16, "reserved address (segment routing)"),
        (0xfc00 << 112, 7, "private network address (unique local)"),
        (0xfe80 << 112, 10, "link-local address"),
        (0xfec0 << 112, 10, "site-local address (deprecated)"),
        (0xff00 << 112, 8, "multicast address"),
    ];
    if let Some((_, _, why)) = table.iter().find(|(net, len, _)| in_v6(ip, *net, *len)) {
        return Some((*why).into());
    }
    // Everything outside global unicast (2000::/3) is reserved.
    if !in_v6(ip, 0x2000 << 112, 3) {
        return Some("reserved address".into());
    }
    None
}

/// The parts of a link that the checks need, taken from the text as typed (before any normalisation that
/// could turn `127.1` into `127.0.0.1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawUrl<'a> {
    pub scheme: String,
    /// The host as written, without the brackets of an IPv6 literal.
    pub host: &'a str,
    pub bracketed: bool,
    pub port: Option<u16>,
}

/// Syntactic checks on a link as typed; see [`check_url`].
pub(crate) fn split_url(input: &str) -> Result<RawUrl<'_>, FetchError> {
    let bad = |m: String| Err(FetchError::InvalidUrl(m));
    if input.is_empty() {
        return bad("the link is empty".into());
    }
    if input.len() > MAX_URL_LEN {
        return bad(format!(
            "the link is too long ({} bytes, at most {MAX_URL_LEN})",
            input.len()
        ));
    }
    if input.starts_with('-') {
        return bad("refusing a link that begins with '-'".into());
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("the link contains spaces or control characters; paste just the link".into());
    }
    if input.contains('\\') {
        return bad("refusing a link that contains a backslash".into());
    }
    let Some((scheme, rest)) = input.split_once(':') else {
        return bad(format!(
            "{input:?} is not a link: give a full http:// or https:// address"
        ));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return bad(format!(
            "{input:?} is not a link: give a full http:// or https:// address"
        ));
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return bad(format!(
            "only http:// and https:// links can be fetched, not {scheme}:"
        ));
    }
    let Some(rest) = rest.strip_prefix("//") else {
        return bad(format!("{input:?} is not a valid {scheme}:// link"));
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return bad("refusing a link with a user name or password in it (user:pass@host)".into());
    }
    let (host, bracketed, port) = split_host_port(authority)?;
    Ok(RawUrl {
        scheme,
        host,
        bracketed,
        port,
    })
}

/// Splits `host[:port]` or `[v6][:port]` (the authority of a link, or the target of a CONNECT request).
pub(crate) fn split_host_port(authority: &str) -> Result<(&str, bool, Option<u16>), FetchError> {
    let bad = |m: String| Err(FetchError::InvalidUrl(m));
    let (host, bracketed, port_str) = if let Some(r) = authority.strip_prefix('[') {
        let Some((h, after)) = r.split_once(']') else {
            return bad(format!("unclosed '[' in {authority:?}"));
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return bad(format!("unexpected text after ']' in {authority:?}")),
            },
        };
        (h, true, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, false, Some(p)),
            None => (authority, false, None),
        }
    };
    let port = match port_str {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return bad(format!("invalid port {p:?}")),
                Ok(n) => Some(n),
            }
        }
        Some(p) => return bad(format!("invalid port {p:?}")),
    };
    if host.is_empty() {
        return bad("the link has no host name".into());
    }
    if host.contains('%') {
        return bad(format!(
            "refusing the host {host:?}: percent signs (encoded names, IPv6 zones) are not allowed in host names"
        ));
    }
    Ok((host, bracketed, port))
}

/// Whether `label` reads as a number to an IPv4 parser (decimal, octal `0…` or hexadecimal `0x…`), which is what
/// makes browsers and `inet_aton` take a whole host name as an address.
fn numeric_label(label: &str) -> bool {
    if let Some(hex) = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
    {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses host names that are numbers but not a canonical dotted quad (`127.1`, `0x7f.1`, `2130706433`,
/// `0177.0.0.1`, `1.2.3.4.`): different parsers read them as different addresses.
fn check_numeric_host(host: &str) -> Result<(), FetchError> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let last = trimmed.rsplit('.').next().unwrap_or("");
    if !numeric_label(last) {
        return Ok(());
    }
    let canonical = trimmed == host
        && host
            .parse::<Ipv4Addr>()
            .is_ok_and(|ip| ip.to_string() == host);
    if canonical {
        Ok(())
    } else {
        Err(FetchError::InvalidUrl(format!(
            "refusing the numeric host {host:?}: write an IPv4 address as four decimal numbers (a.b.c.d)"
        )))
    }
}

/// A host and port that passed the policy, with the addresses to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedHost {
    /// The host as it will be shown and looked up: lower-case name or canonical IP address.
    pub host: String,
    pub port: u16,
    /// Every address the host resolved to; all passed the policy. Connect only to these (a second lookup could
    /// answer differently).
    pub addrs: Vec<SocketAddr>,
}

/// Checks one host (as written in a link or a CONNECT request, IPv6 without brackets) and port against the
/// policy: numeric forms, then every address it resolves to.
pub fn check_host(
    host: &str,
    port: u16,
    policy: &Policy,
    resolver: &dyn Resolver,
) -> Result<CheckedHost, FetchError> {
    let refuse = |target: String, reason: String| FetchError::Refused {
        target,
        reason,
        redirected: false,
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ip.is_ipv4() {
            check_numeric_host(host)?;
        }
        let addr = SocketAddr::new(ip, port);
        if let Some(why) = policy.refusal(addr) {
            return Err(refuse(ip.to_string(), why));
        }
        return Ok(CheckedHost {
            host: ip.to_string(),
            port,
            addrs: vec![addr],
        });
    }
    check_numeric_host(host)?;
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(FetchError::InvalidUrl(format!(
            "invalid host name {host:?}"
        )));
    }
    let ips = resolver
        .resolve(&name, port)
        .map_err(|e| FetchError::Resolve {
            host: name.clone(),
            message: e.to_string(),
        })?;
    if ips.is_empty() {
        return Err(FetchError::Resolve {
            host: name,
            message: "no addresses".into(),
        });
    }
    let mut addrs = Vec::new();
    for ip in ips {
        let addr = SocketAddr::new(ip, port);
        if let Some(why) = policy.refusal(addr) {
            return Err(refuse(format!("{name} ({ip})"), why));
        }
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    Ok(CheckedHost {
        host: name,
        port,
        addrs,
    })
}

/// A link that passed [`check_url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The link as parsed (WHATWG rules), fragment kept.
    pub url: url::Url,
    pub host: CheckedHost,
}

impl ParsedUrl {
    /// The link in normal form, for cache keys: lower-case scheme and host, no default port, no fragment.
    pub fn normalized(&self) -> String {
        let mut u = self.url.clone();
        u.set_fragment(None);
        u.to_string()
    }
}

/// Checks a link typed or pasted by a user: `http`/`https` only, no leading `-`, no whitespace, control
/// characters or backslashes, no user name or password, no numeric host other than a canonical dotted quad, and
/// a host that is, and resolves only to, addresses the policy allows.
pub fn check_url(
    input: &str,
    policy: &Policy,
    resolver: &dyn Resolver,
) -> Result<ParsedUrl, FetchError> {
    let raw = split_url(input)?;
    if !raw.bracketed {
        check_numeric_host(raw.host)?;
    }
    let url = url::Url::parse(input)
        .map_err(|e| FetchError::InvalidUrl(format!("not a valid link ({e}): {input}")))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| FetchError::InvalidUrl(format!("no port in {input}")))?;
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            // A host that the WHATWG parser turned into an address (`127。1`, `0x7f.1`) must have been written
            // as one.
            if raw.bracketed || raw.host.to_ascii_lowercase() != ip.to_string() {
                return Err(FetchError::InvalidUrl(format!(
                    "refusing the numeric host {:?}: write an IPv4 address as four decimal numbers (a.b.c.d)",
                    raw.host
                )));
            }
            ip.to_string()
        }
        Some(url::Host::Ipv6(ip)) => {
            if !raw.bracketed {
                return Err(FetchError::InvalidUrl(format!(
                    "invalid host {:?}",
                    raw.host
                )));
            }
            ip.to_string()
        }
        Some(url::Host::Domain(d)) => d.to_owned(),
        None => return Err(FetchError::InvalidUrl("the link has no host name".into())),
    };
    let host = check_host(&host, port, policy, resolver)?;
    Ok(ParsedUrl { url, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "169.253.255.255",
            "223.255.255.255",
            "2a00:1450:4001:82a::200e",
            "2606:4700::6810:84e5",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:808:808::f7f7:f7f7",
        ] {
            assert_eq!(classify(ip(a)), None, "{a}");
        }
    }

    #[test]
    fn every_special_v4_range_is_refused() {
        let cases = [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("10.0.0.5", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.254", "private"),
            ("192.168.1.1", "private"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "metadata"),
            ("169.254.170.2", "metadata"),
            ("100.100.100.200", "metadata"),
            ("168.63.129.16", "metadata"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.254", "carrier-grade NAT"),
            ("192.0.0.8", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("192.88.99.1", "6to4 relay"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
        ];
        for (a, want) in cases {
            let why = classify(v4(a)).unwrap_or_else(|| panic!("{a} passed"));
            assert!(why.contains(want), "{a}: {why}");
        }
    }

    #[test]
    fn every_special_v6_range_is_refused() {
        let cases = [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fd00:ec2::254", "metadata"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff05::2", "multicast"),
            ("100::1", "discard"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001:2::1", "reserved"),
            ("5f00::1", "reserved"),
            ("4000::1", "reserved"),
            (
                "::ffff:10.0.0.1",
                "private network address (10.0.0.1 inside an IPv4-mapped",
            ),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            (
                "::10.0.0.1",
                "private network address (10.0.0.1 inside an IPv4-compatible",
            ),
            ("::8.8.8.8", "deprecated IPv4-compatible"),
            ("::ffff:0:10.0.0.1", "reserved"),
            (
                "64:ff9b::a00:1",
                "private network address (10.0.0.1 inside a NAT64",
            ),
            ("64:ff9b:1::1", "local-use NAT64"),
            (
                "2002:a00:1::1",
                "private network address (10.0.0.1 inside a 6to4",
            ),
            ("2002:7f00:1::", "loopback address (127.0.0.1 inside a 6to4"),
            ("2002:a9fe:a9fe::1", "metadata"),
            // Teredo: client 192.168.1.1 stored inverted (3f57:fefe).
            (
                "2001:0:808:808::3f57:fefe",
                "private network address (192.168.1.1 inside a Teredo",
            ),
            (
                "2001:0:a00:1::f7f7:f7f7",
                "private network address (10.0.0.1 inside a Teredo address (server",
            ),
        ];
        for (a, want) in cases {
            let why = classify(ip(a)).unwrap_or_else(|| panic!("{a} passed"));
            assert!(why.contains(want), "{a}: {why}");
        }
    }

    #[test]
    fn allow_list_is_exact() {
        let p = Policy::allowing(&["127.0.0.1"]).unwrap();
        assert!(p.refusal("127.0.0.1:8080".parse().unwrap()).is_none());
        assert!(p.refusal("127.0.0.2:80".parse().unwrap()).is_some());
        assert!(p.refusal("[::1]:80".parse().unwrap()).is_some());
        assert!(p
            .refusal("[::ffff:127.0.0.1]:80".parse().unwrap())
            .is_some());
        let p = Policy::allowing(&["10.0.0.5:8443", "[::1]"]).unwrap();
        assert!(p.refusal("10.0.0.5:8443".parse().unwrap()).is_none());
        assert!(p.refusal("10.0.0.5:80".parse().unwrap()).is_some());
        assert!(p.refusal("[::1]:1".parse().unwrap()).is_none());
        assert!(Policy::allowing(&["localhost"]).is_err());
        assert_eq!(Policy::default().allow, vec![]);
    }

    fn resolver() -> StaticResolver {
        StaticResolver::new()
            .with("video.example", &[v4("93.184.215.14")])
            .with("internal.example", &[v4("10.0.0.5")])
            .with("mixed.example", &[v4("93.184.215.14"), v4("192.168.0.7")])
            .with("v6only.example", &[ip("fd00::5")])
            .with("meta.example", &[v4("169.254.169.254")])
            .with("localhost", &[ip("::1"), v4("127.0.0.1")])
            .with("local.example", &[v4("127.0.0.1")])
    }

    fn err(url: &str) -> String {
        let p = Policy::allowing(&["127.0.0.1"]).unwrap();
        check_url(url, &p, &resolver())
            .map(|u| panic!("{url} passed: {u:?}"))
            .unwrap_err()
            .to_string()
    }

    fn ok(url: &str) -> ParsedUrl {
        let p = Policy::allowing(&["127.0.0.1"]).unwrap();
        check_url(url, &p, &resolver()).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn schemes_other_than_http_are_refused() {
        for u in [
            "file:///etc/passwd",
            "ftp://127.0.0.1/x",
            "data:text/html,hi",
            "gopher://video.example/",
            "javascript:alert(1)",
            "FILE:///etc/passwd",
            "ws://video.example/",
        ] {
            let e = err(u);
            assert!(e.contains("only http:// and https://"), "{u}: {e}");
        }
        assert!(err("video.example/x.mp4").contains("not a link"));
        assert!(err("http:video.example/x").contains("not a valid"));
    }

    #[test]
    fn malformed_links_are_refused_with_reasons() {
        assert!(err("-o/tmp/x http://video.example/").contains("begins with '-'"));
        assert!(err("--exec=id").contains("begins with '-'"));
        assert!(err("http://video.example/a b").contains("spaces or control"));
        assert!(err("http://video.example/\n").contains("spaces or control"));
        assert!(err(" http://video.example/").contains("spaces or control"));
        assert!(err("http://video.example/\u{7}").contains("spaces or control"));
        assert!(err("http://evil.example\\@video.example/").contains("backslash"));
        assert!(err("http://user:pass@video.example/").contains("user name or password"));
        assert!(err("http://user@video.example/").contains("user name or password"));
        assert!(err("http://video.example:99999/").contains("invalid port"));
        assert!(err("http://video.example:0/").contains("invalid port"));
        assert!(err("http:///x").contains("no host"));
        assert!(err("http://127%2E0%2E0%2E1/").contains("percent"));
        assert!(err("http://[fe80::1%25eth0]/").contains("percent"));
        assert!(err(&format!("http://video.example/{}", "a".repeat(5000))).contains("too long"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn non_canonical_numeric_hosts_are_refused() {
        for u in [
            "http://127.1/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.0.0.01/",
            "http://127.0.0.1./",
            "http://8.8.8.8./",
            "http://1.1/",
            "http://0/",
            "http://0x/",
            "http://010.0.0.1/",
            "http://a.0x10/",
            "http://127。0。0。1/",
            "http://１２７.0.0.1/",
        ] {
            let e = err(u);
            assert!(
                e.contains("numeric host") || e.contains("loopback"),
                "{u}: {e}"
            );
        }
        // Names that merely look hexadecimal are names.
        let r = StaticResolver::new()
            .with("cafe.be", &[v4("93.184.215.14")])
            .with("dead.beef", &[v4("93.184.215.14")])
            .with("1.example", &[v4("93.184.215.14")]);
        for u in ["http://cafe.be/", "http://dead.beef/", "http://1.example/"] {
            check_url(u, &Policy::default(), &r).unwrap_or_else(|e| panic!("{u}: {e}"));
        }
    }

    #[test]
    fn literal_addresses_are_classified() {
        assert_eq!(
            err("http://10.0.0.5/x.mp4"),
            "refusing to fetch from 10.0.0.5: private network address"
        );
        assert!(err("http://[::1]/").contains("::1: loopback"));
        assert!(err("http://[::ffff:127.0.0.1]/").contains("loopback"));
        assert!(err("http://[::ffff:7f00:1]/").contains("loopback"));
        assert!(err("http://169.254.169.254/latest/meta-data/").contains("cloud metadata"));
        assert!(err("http://[fd00:ec2::254]/").contains("cloud metadata"));
        assert!(err("http://100.100.100.200/").contains("cloud metadata"));
        assert!(err("https://192.168.0.1:8443/").contains("private"));
        assert!(err("http://0.0.0.0:8080/").contains("unspecified"));
        assert!(err("http://224.0.0.1/").contains("multicast"));
        assert!(err("http://255.255.255.255/").contains("broadcast"));
        assert!(err("http://127.0.0.2/").contains("loopback"));
        assert!(err("http://[2002:a00:1::1]/").contains("6to4"));
        // The allow-list entry passes, whatever the port.
        let u = ok("http://127.0.0.1:8123/a/b.mp4");
        assert_eq!(u.host.addrs, vec!["127.0.0.1:8123".parse().unwrap()]);
    }

    #[test]
    fn names_are_checked_by_every_address_they_resolve_to() {
        assert_eq!(
            err("http://internal.example/x"),
            "refusing to fetch from internal.example (10.0.0.5): private network address"
        );
        assert!(err("https://mixed.example/").contains("mixed.example (192.168.0.7): private"));
        assert!(err("https://v6only.example/").contains("unique local"));
        assert!(err("http://META.example/").contains("cloud metadata"));
        // localhost resolves to ::1 as well as the allowed 127.0.0.1: refused.
        assert!(err("http://localhost:8080/").contains("localhost (::1): loopback"));
        assert!(ok("http://local.example:9/").host.addrs == vec!["127.0.0.1:9".parse().unwrap()]);
        let e = err("http://nowhere.example/");
        assert!(e.contains("cannot resolve host nowhere.example"), "{e}");
        let u = ok("https://Video.Example/watch?v=1#t=10");
        assert_eq!(u.host.host, "video.example");
        assert_eq!(u.host.addrs, vec!["93.184.215.14:443".parse().unwrap()]);
    }

    #[test]
    fn normal_form_for_cache_keys() {
        assert_eq!(
            ok("HTTPS://VIDEO.example:443/Path?q=1#frag").normalized(),
            "https://video.example/Path?q=1"
        );
        assert_eq!(
            ok("http://video.example:80").normalized(),
            "http://video.example/"
        );
        assert_eq!(
            ok("http://video.example:8080/a/../b").normalized(),
            "http://video.example:8080/b"
        );
    }

    #[test]
    fn check_host_for_proxy_targets() {
        let p = Policy::allowing(&["127.0.0.1"]).unwrap();
        let r = resolver();
        assert!(check_host("127.0.0.1", 80, &p, &r).is_ok());
        assert!(check_host("127.1", 80, &p, &r).is_err());
        assert!(check_host("::1", 80, &p, &r).is_err());
        assert!(check_host("2130706433", 443, &p, &r).is_err());
        assert!(check_host("bad name", 443, &p, &r).is_err());
        let e = check_host("10.1.2.3", 80, &p, &r).unwrap_err().to_string();
        assert_eq!(
            e,
            "refusing to fetch from 10.1.2.3: private network address"
        );
    }

    #[test]
    fn system_resolver_answers_for_addresses_without_the_network() {
        // A literal address is not looked up anywhere: getaddrinfo answers it locally.
        let ips = SystemResolver.resolve("127.0.0.1", 80).unwrap();
        assert_eq!(ips, vec![v4("127.0.0.1")]);
    }
}
