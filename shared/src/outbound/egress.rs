//! Where a delivery may go: the SSRF rules, the resolver that applies them to the addresses a
//! connection actually uses, and the HTTP client built on both.
//!
//! The URL is the API user's choice and the request leaves from inside AWS, so by default only
//! public addresses are reachable. The rules are applied after DNS resolution, inside the
//! client's resolver ([`FilteringResolver`]), not to a lookup made beforehand: a second lookup
//! can answer differently (DNS rebinding). reqwest does not consult the resolver for an
//! IP-literal host, so [`EgressClient::check_literal`] checks those before the request is sent.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// A class of addresses a delivery may not reach, named in the error that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// 127.0.0.0/8 and ::1.
    Loopback,
    /// RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16.
    Private,
    /// 169.254.0.0/16 (the instance metadata service) and fe80::/10.
    LinkLocal,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// 0.0.0.0/8, "this network" (0.0.0.0 included).
    ThisNetwork,
    /// 240.0.0.0/4, reserved for future use.
    Reserved,
    /// 198.18.0.0/15, network benchmarking (RFC 2544).
    Benchmarking,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32.
    Documentation,
    /// 224.0.0.0/4 and ff00::/8.
    Multicast,
    /// The IPv6 unspecified address `::`.
    Unspecified,
    /// fc00::/7, IPv6 unique local addresses.
    UniqueLocal,
    /// 192.0.0.0/24, IETF protocol assignments (DS-Lite, NAT64 discovery, PCP anycast, ...).
    ProtocolAssignments,
    /// fec0::/10, IPv6 site-local addresses (deprecated, RFC 3879, yet still routed inside some
    /// networks like private ones).
    SiteLocal,
    /// 64:ff9b:1::/48, the local-use NAT64 prefix (RFC 8215): where the IPv4 address sits in it
    /// depends on the prefix length the network chose, so it cannot be read out and judged.
    LocalNat64,
}

impl Rule {
    /// The rule's name as error messages and logs show it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Loopback => "loopback",
            Rule::Private => "private (RFC 1918)",
            Rule::LinkLocal => "link-local (includes the metadata service)",
            Rule::SharedAddressSpace => "shared address space (100.64.0.0/10)",
            Rule::ThisNetwork => "this network (0.0.0.0/8)",
            Rule::Reserved => "reserved (240.0.0.0/4)",
            Rule::Benchmarking => "benchmarking (198.18.0.0/15)",
            Rule::Broadcast => "broadcast",
            Rule::Documentation => "documentation",
            Rule::Multicast => "multicast",
            Rule::Unspecified => "unspecified",
            Rule::UniqueLocal => "unique local (fc00::/7)",
            Rule::ProtocolAssignments => "IETF protocol assignments (192.0.0.0/24)",
            Rule::SiteLocal => "site-local (fec0::/10)",
            Rule::LocalNat64 => "local-use NAT64 (64:ff9b:1::/48)",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The IPv4 rules, in order: the first match names the refusal (broadcast before the 240/4
/// block that contains it).
const V4_RULES: &[(Ipv4Addr, u8, Rule)] = &[
    (Ipv4Addr::new(255, 255, 255, 255), 32, Rule::Broadcast),
    (Ipv4Addr::new(0, 0, 0, 0), 8, Rule::ThisNetwork),
    (Ipv4Addr::new(127, 0, 0, 0), 8, Rule::Loopback),
    (Ipv4Addr::new(10, 0, 0, 0), 8, Rule::Private),
    (Ipv4Addr::new(172, 16, 0, 0), 12, Rule::Private),
    (Ipv4Addr::new(192, 168, 0, 0), 16, Rule::Private),
    (Ipv4Addr::new(169, 254, 0, 0), 16, Rule::LinkLocal),
    (Ipv4Addr::new(100, 64, 0, 0), 10, Rule::SharedAddressSpace),
    (Ipv4Addr::new(198, 18, 0, 0), 15, Rule::Benchmarking),
    (Ipv4Addr::new(192, 0, 0, 0), 24, Rule::ProtocolAssignments),
    (Ipv4Addr::new(192, 0, 2, 0), 24, Rule::Documentation),
    (Ipv4Addr::new(198, 51, 100, 0), 24, Rule::Documentation),
    (Ipv4Addr::new(203, 0, 113, 0), 24, Rule::Documentation),
    (Ipv4Addr::new(224, 0, 0, 0), 4, Rule::Multicast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, Rule::Reserved),
];

/// The IPv6 rules, judged before an embedded IPv4 address is read out (so `::` and `::1` are
/// themselves, not the IPv4-compatible `0.0.0.0` and `0.0.0.1`).
const V6_RULES: &[(Ipv6Addr, u8, Rule)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, Rule::Unspecified),
    (Ipv6Addr::LOCALHOST, 128, Rule::Loopback),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        Rule::LinkLocal,
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        Rule::SiteLocal,
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        Rule::LocalNat64,
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        Rule::UniqueLocal,
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        Rule::Multicast,
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        Rule::Documentation,
    ),
];

/// The rule that refuses `ip`, or `None` for a public address. An IPv6 address that carries
/// an IPv4 address a packet to it reaches is judged as that IPv4 address too ([`embedded_v4`]):
/// a refused one refuses it.
pub fn refusal(ip: IpAddr) -> Option<Rule> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => V6_RULES
            .iter()
            .find(|(net, len, _)| within(v6.to_bits(), net.to_bits(), *len))
            .map(|(_, _, rule)| *rule)
            .or_else(|| embedded_v4(v6).into_iter().flatten().find_map(refusal_v4)),
    }
}

/// The IPv4 addresses an IPv6 address carries, for the forms whose traffic reaches them:
/// - IPv4-mapped `::ffff:a.b.c.d`: the address itself, to a dual-stack socket;
/// - IPv4-compatible `::a.b.c.d` (deprecated, RFC 4291), still tunnelled by some stacks;
/// - NAT64's well-known prefix `64:ff9b::/96` (RFC 6052): in a VPC with DNS64 and NAT64, the
///   NAT gateway connects to it, private ones included;
/// - 6to4 `2002:aabb:ccdd::/48` (RFC 3056): relayed to `aa.bb.cc.dd`;
/// - Teredo `2001:0::/32` (RFC 4380): the server's address, and the client's, stored inverted
///   in the last 32 bits.
fn embedded_v4(ip: Ipv6Addr) -> [Option<Ipv4Addr>; 2] {
    const NAT64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    const SIX_TO_FOUR: Ipv6Addr = Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0);
    const TEREDO: Ipv6Addr = Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0);
    let bits = ip.to_bits();
    let v4_at = |shift: u32| Ipv4Addr::from_bits((bits >> shift) as u32);
    if let Some(v4) = ip.to_ipv4_mapped() {
        [Some(v4), None]
    } else if within(bits, 0, 96) || within(bits, NAT64.to_bits(), 96) {
        [Some(v4_at(0)), None]
    } else if within(bits, SIX_TO_FOUR.to_bits(), 16) {
        [Some(v4_at(80)), None]
    } else if within(bits, TEREDO.to_bits(), 32) {
        [Some(v4_at(64)), Some(Ipv4Addr::from_bits(!(bits as u32)))]
    } else {
        [None, None]
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<Rule> {
    V4_RULES
        .iter()
        .find(|(net, len, _)| within(ip.to_bits().into(), net.to_bits().into(), *len + 96))
        .map(|(_, _, rule)| *rule)
}

/// Whether `addr` lies in `net`/`len`, both as 128-bit numbers (IPv4 shifted into the low
/// 32 bits, so its prefix length is 96 more).
fn within(addr: u128, net: u128, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    addr & mask == net & mask
}

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// Public addresses over `https` only: every deployed stack.
    PublicOnly,
    /// Anything, `http` included (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`, local runs only).
    PrivateAllowed,
}

impl Targets {
    /// The rule that keeps a delivery from `ip`, if any.
    pub fn refusal(self, ip: IpAddr) -> Option<Rule> {
        match self {
            Targets::PublicOnly => refusal(ip),
            Targets::PrivateAllowed => None,
        }
    }
}

/// A delivery that may not reach its address: the error names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target} is refused: {rule} address")]
pub struct Refused {
    /// The host name and the address it resolved to, or the literal address.
    pub target: String,
    /// The rule that refused it.
    pub rule: Rule,
}

/// A name that resolved to no address at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} resolved to no address")]
pub struct NoAddress(pub String);

/// The system's resolver (`getaddrinfo` through tokio), the one a [`FilteringResolver`] wraps
/// unless a test injects another.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}

/// A resolver that lets through only the addresses [`Targets`] allows: refused addresses are
/// dropped, and when none is left the lookup fails with [`Refused`], naming the rule. It runs
/// inside the client's connector, so the check applies to the addresses the connection uses.
#[derive(Clone)]
pub struct FilteringResolver {
    inner: Arc<dyn Resolve>,
    targets: Targets,
}

impl FilteringResolver {
    /// Filters what `inner` answers through `targets`.
    pub fn new(inner: Arc<dyn Resolve>, targets: Targets) -> Self {
        Self { inner, targets }
    }
}

impl fmt::Debug for FilteringResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilteringResolver")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let targets = self.targets;
        let lookup = self.inner.resolve(name);
        Box::pin(async move {
            let mut first_refused = None;
            let allowed: Vec<SocketAddr> = lookup
                .await?
                .filter(|addr| match targets.refusal(addr.ip()) {
                    None => true,
                    Some(rule) => {
                        first_refused.get_or_insert(Refused {
                            target: format!("{host} ({})", addr.ip()),
                            rule,
                        });
                        false
                    }
                })
                .collect();
            if !allowed.is_empty() {
                return Ok(Box::new(allowed.into_iter()) as Addrs);
            }
            Err(match first_refused {
                Some(refused) => refused.into(),
                None => NoAddress(host).into(),
            })
        })
    }
}

/// The HTTP client deliveries are sent with: the process's TLS settings, the filtering
/// resolver, no redirects, no proxy, and the attempt's time limit.
/// Built once per container and reused: its connection pool outlives an invocation.
#[derive(Debug, Clone)]
pub struct EgressClient {
    http: reqwest::Client,
    targets: Targets,
    timeout: Duration,
}

impl EgressClient {
    /// A client that resolves names with the system's resolver.
    pub fn new(targets: Targets, timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::with_resolver(targets, timeout, Arc::new(SystemResolver))
    }

    /// A client that resolves names with `inner` (tests make a name resolve to any address).
    pub fn with_resolver(
        targets: Targets,
        timeout: Duration,
        inner: Arc<dyn Resolve>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*crate::https::tls_config()).clone())
            .dns_resolver(FilteringResolver::new(inner, targets))
            // A 3xx is a failed attempt: following it would reach a URL no one checked.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy (from `HTTPS_PROXY` and the like) would be resolved instead of the target,
            // and the filter would judge the proxy's address.
            .no_proxy()
            .https_only(targets == Targets::PublicOnly)
            .connect_timeout(timeout)
            // Bounds the whole attempt: connect, TLS, the request, the response and its body.
            .timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            targets,
            timeout,
        })
    }

    /// Which addresses this client may reach.
    pub fn targets(&self) -> Targets {
        self.targets
    }

    /// The time limit of one attempt (`WEBHOOK_TIMEOUT_MS`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Refuses an IP-literal URL whose address is refused: reqwest connects to a literal
    /// without asking the resolver.
    pub fn check_literal(&self, url: &Url) -> Result<(), Refused> {
        literal_refusal(url, self.targets).map_or(Ok(()), Err)
    }

    /// The underlying client, for the module's request code.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// The refusal of `url`'s host when it is an IP literal that `targets` refuses.
pub(super) fn literal_refusal(url: &Url, targets: Targets) -> Option<Refused> {
    // The URL parser has normalized the literal already (`0x7f.1` is `127.0.0.1`); an IPv6
    // literal keeps its brackets.
    let host = url.host_str()?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    targets.refusal(ip).map(|rule| Refused {
        target: ip.to_string(),
        rule,
    })
}

/// A resolver that answers every name with fixed addresses and counts its lookups.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct StaticResolver {
    /// The answer to every lookup.
    pub addrs: Vec<IpAddr>,
    /// How many lookups were made.
    pub lookups: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl StaticResolver {
    /// Answers every name with `addrs`.
    pub fn new(addrs: &[IpAddr]) -> Arc<Self> {
        Arc::new(Self {
            addrs: addrs.to_vec(),
            lookups: Default::default(),
        })
    }
}

#[cfg(test)]
impl Resolve for StaticResolver {
    fn resolve(&self, _: Name) -> Resolving {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let addrs: Vec<SocketAddr> = self
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Each range with its first and last address refused and its neighbours outside allowed
    /// (where the neighbour is not itself in another range).
    #[test]
    fn each_refused_range_is_refused_from_its_first_to_its_last_address() {
        let ranges: [(&str, &str, Rule); 23] = [
            ("127.0.0.0", "127.255.255.255", Rule::Loopback),
            ("10.0.0.0", "10.255.255.255", Rule::Private),
            ("172.16.0.0", "172.31.255.255", Rule::Private),
            ("192.168.0.0", "192.168.255.255", Rule::Private),
            ("169.254.0.0", "169.254.255.255", Rule::LinkLocal),
            ("100.64.0.0", "100.127.255.255", Rule::SharedAddressSpace),
            ("0.0.0.0", "0.255.255.255", Rule::ThisNetwork),
            ("240.0.0.0", "255.255.255.254", Rule::Reserved),
            ("198.18.0.0", "198.19.255.255", Rule::Benchmarking),
            ("255.255.255.255", "255.255.255.255", Rule::Broadcast),
            ("192.0.2.0", "192.0.2.255", Rule::Documentation),
            ("198.51.100.0", "198.51.100.255", Rule::Documentation),
            ("203.0.113.0", "203.0.113.255", Rule::Documentation),
            ("224.0.0.0", "239.255.255.255", Rule::Multicast),
            ("192.0.0.0", "192.0.0.255", Rule::ProtocolAssignments),
            (
                "fec0::",
                "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Rule::SiteLocal,
            ),
            (
                "64:ff9b:1::",
                "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
                Rule::LocalNat64,
            ),
            ("::1", "::1", Rule::Loopback),
            ("::", "::", Rule::Unspecified),
            (
                "fe80::",
                "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Rule::LinkLocal,
            ),
            (
                "fc00::",
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Rule::UniqueLocal,
            ),
            (
                "ff00::",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Rule::Multicast,
            ),
            (
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                Rule::Documentation,
            ),
        ];
        for (first, last, rule) in ranges {
            assert_eq!(refusal(ip(first)), Some(rule), "{first}");
            assert_eq!(refusal(ip(last)), Some(rule), "{last}");
        }
    }

    #[test]
    fn the_neighbours_of_the_refused_ranges_are_public() {
        for public in [
            "126.255.255.255",
            "128.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "1.0.0.0",
            "223.255.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "192.0.1.255",
            "192.0.3.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "8.8.8.8",
            "191.255.255.255",
            "192.0.1.0",
            "::1:0:0",
            "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db9::",
            "2606:4700:4700::1111",
        ] {
            assert_eq!(refusal(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_addresses_are_judged_as_the_ipv4_they_carry() {
        assert_eq!(refusal(ip("::ffff:127.0.0.1")), Some(Rule::Loopback));
        assert_eq!(refusal(ip("::ffff:169.254.169.254")), Some(Rule::LinkLocal));
        assert_eq!(refusal(ip("::ffff:10.1.2.3")), Some(Rule::Private));
        assert_eq!(refusal(ip("::ffff:0.0.0.0")), Some(Rule::ThisNetwork));
        assert_eq!(refusal(ip("::ffff:8.8.8.8")), None);
    }

    #[test]
    fn nat64_addresses_are_judged_as_the_ipv4_they_carry() {
        assert_eq!(
            refusal(ip("64:ff9b::169.254.169.254")),
            Some(Rule::LinkLocal)
        );
        assert_eq!(refusal(ip("64:ff9b::10.0.0.1")), Some(Rule::Private));
        assert_eq!(refusal(ip("64:ff9b::8.8.8.8")), None);
        assert_eq!(refusal(ip("64:ff9b:0:0:0:1::")), None, "outside the /96");
    }

    #[test]
    fn ipv4_compatible_addresses_are_judged_as_the_ipv4_they_carry() {
        assert_eq!(refusal(ip("::127.0.0.1")), Some(Rule::Loopback));
        assert_eq!(refusal(ip("::169.254.169.254")), Some(Rule::LinkLocal));
        assert_eq!(refusal(ip("::10.1.2.3")), Some(Rule::Private));
        assert_eq!(refusal(ip("::0.0.0.2")), Some(Rule::ThisNetwork));
        assert_eq!(refusal(ip("::8.8.8.8")), None);
        // `::` and `::1` are the IPv6 unspecified and loopback addresses, named as such.
        assert_eq!(refusal(ip("::")), Some(Rule::Unspecified));
        assert_eq!(refusal(ip("::1")), Some(Rule::Loopback));
    }

    #[test]
    fn six_to_four_addresses_are_judged_as_the_ipv4_they_carry() {
        assert_eq!(refusal(ip("2002:7f00:1::1")), Some(Rule::Loopback));
        assert_eq!(refusal(ip("2002:a9fe:a9fe::")), Some(Rule::LinkLocal));
        assert_eq!(refusal(ip("2002:c0a8:101:1::")), Some(Rule::Private));
        assert_eq!(refusal(ip("2002:808:808::1")), None);
    }

    #[test]
    fn teredo_addresses_are_judged_as_their_server_and_their_client() {
        // Server 65.54.227.120; client 127.0.0.1, stored inverted (0x80fffffe).
        assert_eq!(
            refusal(ip("2001:0:4136:e378:8000:63bf:80ff:fffe")),
            Some(Rule::Loopback)
        );
        // Client 10.0.0.1 (inverted 0xf5fffffe) behind a public server.
        assert_eq!(
            refusal(ip("2001:0:4136:e378:8000:63bf:f5ff:fffe")),
            Some(Rule::Private)
        );
        // Server 169.254.169.254, client 8.8.8.8 (inverted 0xf7f7f7f7).
        assert_eq!(
            refusal(ip("2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7")),
            Some(Rule::LinkLocal)
        );
        assert_eq!(refusal(ip("2001:0:4136:e378:8000:63bf:f7f7:f7f7")), None);
        assert_eq!(refusal(ip("2001:1::1")), None, "outside 2001::/32");
    }

    #[test]
    fn the_local_use_nat64_prefix_is_refused_whatever_it_carries() {
        assert_eq!(refusal(ip("64:ff9b:1::808:808")), Some(Rule::LocalNat64));
        assert_eq!(refusal(ip("64:ff9b:1:a00:1::")), Some(Rule::LocalNat64));
        assert_eq!(refusal(ip("64:ff9b:2::")), None);
    }

    #[test]
    fn site_local_addresses_are_refused() {
        assert_eq!(refusal(ip("fec0::1")), Some(Rule::SiteLocal));
        assert_eq!(refusal(ip("fed0:1:2::3")), Some(Rule::SiteLocal));
    }

    #[test]
    fn ietf_protocol_assignments_are_refused() {
        for addr in ["192.0.0.8", "192.0.0.9", "192.0.0.170", "::ffff:192.0.0.1"] {
            assert_eq!(refusal(ip(addr)), Some(Rule::ProtocolAssignments), "{addr}");
        }
    }

    #[test]
    fn private_targets_allowed_refuses_nothing() {
        for s in ["127.0.0.1", "169.254.169.254", "::1", "10.0.0.1"] {
            assert_eq!(Targets::PrivateAllowed.refusal(ip(s)), None);
            assert!(Targets::PublicOnly.refusal(ip(s)).is_some());
        }
    }

    async fn resolve(
        addrs: &[IpAddr],
        targets: Targets,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let resolver = FilteringResolver::new(StaticResolver::new(addrs), targets);
        let name = Name::from_str("hooks.example.test").unwrap();
        Ok(resolver.resolve(name).await?.collect())
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses_and_keeps_public_ones() {
        let addrs = resolve(
            &[
                ip("127.0.0.1"),
                ip("93.184.215.14"),
                ip("::ffff:169.254.169.254"),
            ],
            Targets::PublicOnly,
        )
        .await
        .unwrap();
        assert_eq!(addrs, [SocketAddr::new(ip("93.184.215.14"), 0)]);
    }

    #[tokio::test]
    async fn the_resolver_fails_naming_the_rule_when_nothing_is_left() {
        for (addr, rule) in [
            ("127.0.0.1", Rule::Loopback),
            ("169.254.169.254", Rule::LinkLocal),
            ("::ffff:169.254.169.254", Rule::LinkLocal),
        ] {
            let err = resolve(&[ip(addr)], Targets::PublicOnly).await.unwrap_err();
            let refused = err.downcast_ref::<Refused>().unwrap();
            assert_eq!(refused.rule, rule);
            assert_eq!(
                refused.to_string(),
                format!("hooks.example.test ({addr}) is refused: {rule} address")
            );
        }
        let err = resolve(&[], Targets::PublicOnly).await.unwrap_err();
        assert!(err.downcast_ref::<NoAddress>().is_some(), "{err}");
    }

    #[tokio::test]
    async fn the_resolver_lets_private_addresses_through_when_allowed() {
        let addrs = resolve(&[ip("127.0.0.1")], Targets::PrivateAllowed)
            .await
            .unwrap();
        assert_eq!(addrs, [SocketAddr::new(ip("127.0.0.1"), 0)]);
    }
}
