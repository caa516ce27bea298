//! Which addresses Flotilla may open outbound connections to: a pure check, no I/O.
//!
//! Callers supply addresses (cluster API servers, later registries), so a request to Flotilla
//! could otherwise make it connect to the cloud metadata service or to itself (server-side
//! request forgery). Every outbound connection checks the *resolved* socket address here just
//! before connecting, and connects to exactly the address it checked.
//!
//! Precedence, for one resolved address:
//! 1. Flotilla's own listen address (IP and port) is always refused.
//! 2. An address on `--outbound-allow` is allowed.
//! 3. An address on the deny list — the defaults ([`DEFAULT_DENY`]) plus `--outbound-deny` — is
//!    refused.
//! 4. Everything else (loopback and private ranges included: clusters live there) is allowed.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are checked as the IPv4 address they reach.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Refused unless allowed: (CIDR, what lives there).
pub const DEFAULT_DENY: &[(&str, &str)] = &[
    (
        "169.254.0.0/16",
        "link-local; cloud metadata services live here",
    ),
    ("fe80::/10", "link-local"),
    (
        "0.0.0.0/8",
        "unspecified; connecting there reaches this host",
    ),
    ("::/128", "unspecified"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("255.255.255.255/32", "broadcast"),
];

/// The operator's outbound settings (`--outbound-deny`, `--outbound-allow`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundSettings {
    /// Refused in addition to [`DEFAULT_DENY`].
    pub deny: Vec<IpNet>,
    /// Allowed even when on the deny list.
    pub allow: Vec<IpNet>,
}

impl OutboundSettings {
    /// The policy for a server listening on `listen`.
    pub fn policy(&self, listen: SocketAddr) -> OutboundPolicy {
        OutboundPolicy::new(self, listen)
    }
}

/// One deny-list entry and why it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DenyRule {
    net: IpNet,
    why: &'static str,
}

/// The address policy: a deny list (defaults + operator's), an allow list, and the listen address.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    deny: Vec<DenyRule>,
    allow: Vec<IpNet>,
    listen: SocketAddr,
}

/// Why one address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: SocketAddr,
    /// Such as `169.254.0.0/16 (link-local; cloud metadata services live here)`.
    pub rule: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}", self.address, self.rule)
    }
}

impl OutboundPolicy {
    pub fn new(settings: &OutboundSettings, listen: SocketAddr) -> OutboundPolicy {
        let defaults = DEFAULT_DENY
            .iter()
            .filter_map(|(cidr, why)| cidr.parse::<IpNet>().ok().map(|net| DenyRule { net, why }));
        let configured = settings.deny.iter().map(|net| DenyRule {
            net: *net,
            why: "on --outbound-deny",
        });
        OutboundPolicy {
            deny: defaults.chain(configured).collect(),
            allow: settings.allow.clone(),
            listen,
        }
    }

    /// The built-in deny list only, for a server listening on `listen`.
    pub fn defaults(listen: SocketAddr) -> OutboundPolicy {
        OutboundPolicy::new(&OutboundSettings::default(), listen)
    }

    /// Whether Flotilla may connect to `address`. `is_local` says whether an IP belongs to this
    /// host; it is asked only when Flotilla listens on an unspecified address (0.0.0.0 or ::),
    /// where every local address on the listen port is Flotilla itself.
    pub fn check(
        &self,
        address: SocketAddr,
        is_local: &dyn Fn(IpAddr) -> bool,
    ) -> Result<(), Refusal> {
        let ip = canonical(address.ip());
        if self.is_own_address(ip, address.port(), is_local) {
            return Err(Refusal {
                address,
                rule: format!("Flotilla's own listen address ({})", self.listen),
            });
        }
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match self.deny.iter().find(|rule| rule.net.contains(&ip)) {
            Some(rule) => Err(Refusal {
                address,
                rule: format!("in {} ({})", rule.net, rule.why),
            }),
            None => Ok(()),
        }
    }

    fn is_own_address(&self, ip: IpAddr, port: u16, is_local: &dyn Fn(IpAddr) -> bool) -> bool {
        if port != self.listen.port() {
            return false;
        }
        let listen_ip = canonical(self.listen.ip());
        if listen_ip.is_unspecified() {
            ip.is_loopback() || ip.is_unspecified() || is_local(ip)
        } else {
            ip == listen_ip
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it reaches; anything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Comma-separated CIDRs (`10.0.0.0/8, fd00::/8`); a bare address means just that address.
/// The error names the entry that does not parse.
pub fn parse_cidrs(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(parse_cidr)
        .collect()
}

/// One CIDR or bare address.
pub fn parse_cidr(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{entry:?} is not a CIDR such as 10.0.0.0/8 or an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTEN: &str = "127.0.0.1:50051";

    fn policy(deny: &str, allow: &str) -> OutboundPolicy {
        OutboundSettings {
            deny: parse_cidrs(deny).unwrap(),
            allow: parse_cidrs(allow).unwrap(),
        }
        .policy(LISTEN.parse().unwrap())
    }

    fn allowed(policy: &OutboundPolicy, address: &str) -> bool {
        let address: SocketAddr = address.parse().unwrap();
        policy.check(address, &|_| false).is_ok()
    }

    #[test]
    fn default_deny_list() {
        let p = policy("", "");
        for refused in [
            "169.254.169.254:80",
            "169.254.0.1:443",
            "[fe80::1]:443",
            "[febf::1]:443",
            "0.0.0.0:443",
            "[::]:443",
            "224.0.0.1:443",
            "239.255.255.250:1900",
            "[ff02::1]:443",
            "255.255.255.255:443",
            // IPv4-mapped IPv6 forms reach the IPv4 address
            "[::ffff:169.254.169.254]:80",
            "[::ffff:a9fe:a9fe]:80",
            "[::ffff:0.0.0.0]:443",
            "[::ffff:224.0.0.1]:443",
        ] {
            assert!(!allowed(&p, refused), "{refused} must be refused");
        }
        for fine in [
            "127.0.0.1:6443",
            "127.0.0.9:6443",
            "[::1]:6443",
            "10.0.0.1:6443",
            "172.16.5.4:6443",
            "192.168.1.1:6443",
            "[fd00::1]:6443",
            "8.8.8.8:443",
            "169.253.255.255:443",
            "169.255.0.0:443",
            "[fec0::1]:443",
            "[::ffff:10.0.0.1]:6443",
        ] {
            assert!(allowed(&p, fine), "{fine} must be allowed");
        }
    }

    #[test]
    fn refusal_names_address_and_rule() {
        let refusal = policy("", "")
            .check("169.254.169.254:80".parse().unwrap(), &|_| false)
            .unwrap_err();
        let text = refusal.to_string();
        assert!(text.contains("169.254.169.254:80"), "{text}");
        assert!(text.contains("169.254.0.0/16"), "{text}");
    }

    #[test]
    fn operator_deny_list_adds_to_the_defaults() {
        let p = policy("127.0.0.9/32, 10.0.0.0/8", "");
        assert!(!allowed(&p, "127.0.0.9:6443"));
        assert!(!allowed(&p, "10.200.0.1:6443"));
        assert!(!allowed(&p, "[::ffff:127.0.0.9]:6443"));
        assert!(allowed(&p, "127.0.0.8:6443"));
        assert!(!allowed(&p, "169.254.169.254:80"), "defaults stay");
        let text = p
            .check("127.0.0.9:6443".parse().unwrap(), &|_| false)
            .unwrap_err()
            .to_string();
        assert!(text.contains("--outbound-deny"), "{text}");
    }

    #[test]
    fn allow_list_overrides_the_deny_list() {
        let p = policy("10.0.0.0/8", "10.1.2.3, 169.254.169.254/32");
        assert!(
            allowed(&p, "10.1.2.3:6443"),
            "allowed inside a denied range"
        );
        assert!(!allowed(&p, "10.1.2.4:6443"));
        assert!(
            allowed(&p, "169.254.169.254:80"),
            "operator allowed a default"
        );
        assert!(
            allowed(&p, "[::ffff:169.254.169.254]:80"),
            "mapped form too"
        );
        assert!(!allowed(&p, "169.254.169.253:80"));
    }

    #[test]
    fn own_listen_address_is_refused_even_when_allowed() {
        let p = policy("", "127.0.0.0/8");
        assert!(!allowed(&p, "127.0.0.1:50051"));
        assert!(!allowed(&p, "[::ffff:127.0.0.1]:50051"));
        assert!(
            allowed(&p, "127.0.0.1:50052"),
            "other ports are other servers"
        );
        assert!(allowed(&p, "127.0.0.2:50051"), "other address");

        let any = OutboundPolicy::defaults("0.0.0.0:50051".parse().unwrap());
        let local = |ip: IpAddr| ip == "192.0.2.7".parse::<IpAddr>().unwrap();
        let check = |a: &str| any.check(a.parse().unwrap(), &local).is_ok();
        assert!(!check("127.0.0.1:50051"));
        assert!(!check("[::1]:50051"));
        assert!(!check("192.0.2.7:50051"), "a local interface address");
        assert!(check("192.0.2.8:50051"), "another host");
        assert!(check("192.0.2.7:6443"));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidrs(" 10.0.0.0/8 ,fd00::/8,,127.0.0.9").unwrap(),
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "fd00::/8".parse().unwrap(),
                "127.0.0.9/32".parse().unwrap(),
            ]
        );
        assert_eq!(
            parse_cidr("10.1.2.3/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap(),
            "host bits are dropped"
        );
        let err = parse_cidrs("10.0.0.0/8, bogus").unwrap_err();
        assert!(err.contains("\"bogus\""), "{err}");
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidrs("").unwrap().is_empty());
    }
}
