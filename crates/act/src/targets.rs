//! Where webhooks may go. A destination is a URL an admin types, and the server then POSTs
//! to it from inside the company's network: pointed at `169.254.169.254` (a cloud's
//! metadata service), `127.0.0.1:6379` or `[::1]:22`, a webhook becomes a way to reach
//! what only the server can reach (SSRF). So loopback, private, link-local, shared,
//! multicast and reserved addresses are refused unless the configuration allows their
//! network, when a destination is saved (for addresses written in the URL, and names such
//! as `localhost`) and again at every send, on the addresses the name resolves to then
//! (a name that resolved to a public address when saved may resolve to a private one
//! later: DNS rebinding). Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Which private networks webhooks may reach anyway (a CRM inside the company's network).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// `allowed` are networks like `10.20.0.0/16` or single addresses like `127.0.0.1`.
    pub fn allowing(allowed: &[String]) -> Result<TargetPolicy, String> {
        Ok(TargetPolicy {
            allowed: parse_networks(allowed)?,
        })
    }

    /// Why webhooks may not go to `ip`, if they may not.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let why = non_public(ip)?;
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        Some(format!(
            "{ip} is {why}; webhooks go only to public addresses unless [destinations] allowed_private_networks lists its network"
        ))
    }

    /// Checks a destination's URL as written: its scheme, and its host when that is an
    /// address or a name that always means this machine. Other names are checked at each
    /// send, on what they resolve to.
    pub fn check_url(&self, raw: &str) -> Result<(), String> {
        let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{raw:?} must start with http:// or https://"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a destination URL carries no user or password; the signature authenticates the sender".into());
        }
        match url.host() {
            None => Err(format!("{raw:?} names no host")),
            Some(url::Host::Ipv4(ip)) => self.refusal(IpAddr::V4(ip)).map_or(Ok(()), Err),
            Some(url::Host::Ipv6(ip)) => self.refusal(IpAddr::V6(ip)).map_or(Ok(()), Err),
            Some(url::Host::Domain(name)) => {
                // Names that always mean an address checked here, whatever DNS says.
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let meant = if name == "localhost" || name.ends_with(".localhost") {
                    Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
                } else if name == "metadata.google.internal" {
                    Some(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)))
                } else {
                    None
                };
                match meant.and_then(|ip| self.refusal(ip)) {
                    Some(why) => Err(format!("{name} means {why}")),
                    None => Ok(()),
                }
            }
        }
    }

    /// Keeps the resolved addresses webhooks may go to; an error naming the first refused
    /// one when none is left.
    pub fn filter(&self, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        let mut refused = None;
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.refusal(a.ip()) {
                None => true,
                Some(why) => {
                    refused.get_or_insert(why);
                    false
                }
            })
            .collect();
        match (kept.is_empty(), refused) {
            (true, Some(why)) => Err(why),
            (true, None) => Err("the name resolves to no address".into()),
            (false, _) => Ok(kept),
        }
    }
}

/// Networks as a person writes them in the configuration: `10.20.0.0/16`, or a single
/// address such as `127.0.0.1`.
pub fn parse_networks(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|raw| {
            let raw = raw.trim();
            raw.parse::<IpNet>()
                .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{raw:?} is not a network like 10.20.0.0/16 or an address"))
        })
        .collect()
}

/// What kind of non-public address `ip` is, if it is one.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothing (mapped, or NAT64's well-known prefix).
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return non_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            non_public_v6(v6)
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address (this machine)")
    } else if ip.is_link_local() {
        Some("a link-local address (169.254.169.254 is the cloud metadata service)")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else if ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        Some("a reserved address")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address (this machine)")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip.is_unicast_link_local() {
        Some("a link-local address")
    } else if ip.is_unique_local() {
        Some("a private (unique local) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

/// reqwest's resolver for webhook sends: the system's resolution, then the policy.
pub(crate) struct GuardedResolver {
    pub(crate) policy: Arc<TargetPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = policy
                .filter(addrs)
                .map_err(|why| format!("{host}: {why}"))?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_targets_are_refused() {
        let strict = TargetPolicy::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:6379/",
            "http://[::1]:22/",
            "http://10.0.0.5/hook",
            "http://192.168.1.1/",
            "http://172.20.0.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0:8080/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert!(strict.check_url(url).is_err(), "{url} was accepted");
        }
        for url in [
            "https://crm.example.it/hooks",
            "http://93.184.215.14/",
            "https://[2606:4700::6810:84e5]/",
        ] {
            assert_eq!(strict.check_url(url), Ok(()), "{url}");
        }
        assert!(strict.check_url("ftp://x.it/").is_err());
        assert!(strict.check_url("https://user:pw@x.it/").is_err());
        assert!(strict.check_url("not a url").is_err());
    }

    #[test]
    fn a_network_the_configuration_allows_is_reachable() {
        let policy = TargetPolicy::allowing(&["127.0.0.1".into(), "10.20.0.0/16".into()])
            .expect("valid networks");
        assert_eq!(policy.check_url("http://127.0.0.1:9999/hook"), Ok(()));
        assert_eq!(policy.check_url("http://10.20.3.4/hook"), Ok(()));
        assert_eq!(policy.check_url("http://localhost:9999/hook"), Ok(()));
        assert!(policy.check_url("http://10.21.0.1/hook").is_err());
        assert!(policy.check_url("http://169.254.169.254/").is_err());
        assert!(TargetPolicy::allowing(&["10.0.0.0/33".into()]).is_err());
        assert!(TargetPolicy::allowing(&["intranet".into()]).is_err());
    }

    #[test]
    fn resolved_addresses_are_filtered_at_send_time() {
        let strict = TargetPolicy::default();
        let public: SocketAddr = "93.184.215.14:443".parse().unwrap();
        let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
        assert_eq!(strict.filter(vec![metadata, public]), Ok(vec![public]));
        let refused = strict.filter(vec![metadata]).unwrap_err();
        assert!(refused.contains("169.254.169.254"), "{refused}");
    }
}
