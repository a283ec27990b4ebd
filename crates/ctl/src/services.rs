//! Port names (`http`, `domain`...) from an `/etc/services` table.
//!
//! ipvsadm takes `192.0.2.1:http` and prints port names unless `-n` is
//! given; it asks the C library (`getservbyname`), which reads
//! `/etc/services`. xvs reads the same file itself, once, so the grammar
//! stays free of NSS and host-name lookups: port names are resolved, host
//! names never are. Tests pass their own table.

use std::collections::HashMap;
use std::sync::OnceLock;

use xvs_conntrack::Proto;

/// A port name table in `/etc/services` form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Services {
    /// (name or alias, protocol) -> port; the first line wins.
    by_name: HashMap<(String, &'static str), u16>,
    /// (port, protocol) -> official name; the first line wins.
    by_port: HashMap<(u16, &'static str), String>,
}

impl Services {
    /// An empty table: every port must be given as a number.
    pub fn empty() -> Services {
        Services::default()
    }

    /// Reads `/etc/services` text: `name port/proto [aliases...]`, `#`
    /// comments. Lines that do not parse and protocols other than tcp, udp
    /// and sctp are skipped. As with `getservbyname`, the first entry of a
    /// name or port wins.
    pub fn parse(text: &str) -> Services {
        let mut s = Services::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(pp)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let Some(proto) = proto_key(proto) else {
                continue;
            };
            s.by_port
                .entry((port, proto))
                .or_insert_with(|| name.to_owned());
            for n in std::iter::once(name).chain(words) {
                s.by_name.entry((n.to_owned(), proto)).or_insert(port);
            }
        }
        s
    }

    /// The system table, read from `/etc/services` on first use (empty if
    /// the file cannot be read).
    pub fn system() -> &'static Services {
        static SYSTEM: OnceLock<Services> = OnceLock::new();
        SYSTEM.get_or_init(|| {
            std::fs::read_to_string("/etc/services")
                .map(|t| Services::parse(&t))
                .unwrap_or_default()
        })
    }

    /// The port of a service name for a protocol (TCP for [`Proto::Any`],
    /// as ipvsadm does for fwmark services).
    pub fn port(&self, name: &str, proto: Proto) -> Option<u16> {
        self.by_name
            .get(&(name.to_owned(), proto_name(proto)))
            .copied()
    }

    /// The name of a port, only if that name reads back as the same port
    /// (so a printed name always parses to what was printed).
    pub fn name(&self, port: u16, proto: Proto) -> Option<&str> {
        let name = self.by_port.get(&(port, proto_name(proto)))?;
        (self.port(name, proto) == Some(port)).then_some(name.as_str())
    }
}

fn proto_key(s: &str) -> Option<&'static str> {
    match s {
        "tcp" => Some("tcp"),
        "udp" => Some("udp"),
        "sctp" => Some("sctp"),
        _ => None,
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
        Proto::Tcp | Proto::Any => "tcp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
domain\t\t53/tcp
domain\t\t53/udp
webcache\t8080/tcp
http-alt\t8080/tcp\twebcache
sip\t5060/sctp
bogus line
ddp\t37/ddp
";

    #[test]
    fn names_and_aliases_by_protocol() {
        let s = Services::parse(TEXT);
        assert_eq!(s.port("http", Proto::Tcp), Some(80));
        assert_eq!(s.port("www", Proto::Tcp), Some(80));
        assert_eq!(s.port("http", Proto::Udp), None);
        assert_eq!(s.port("domain", Proto::Udp), Some(53));
        assert_eq!(s.port("sip", Proto::Sctp), Some(5060));
        assert_eq!(s.port("http", Proto::Any), Some(80));
        assert_eq!(s.name(80, Proto::Tcp), Some("http"));
        assert_eq!(s.name(53, Proto::Udp), Some("domain"));
        assert_eq!(s.name(81, Proto::Tcp), None);
        // First entry wins both ways.
        assert_eq!(s.port("webcache", Proto::Tcp), Some(8080));
        assert_eq!(s.name(8080, Proto::Tcp), Some("webcache"));
        assert_eq!(Services::empty().port("http", Proto::Tcp), None);
    }

    #[test]
    fn names_that_do_not_read_back_are_not_printed() {
        // `b` names port 2 first, then port 1's official name is `b`
        // too: printing `b` for 1 would read back as 2.
        let s = Services::parse("b 2/tcp\nb 1/tcp\n");
        assert_eq!(s.name(2, Proto::Tcp), Some("b"));
        assert_eq!(s.name(1, Proto::Tcp), None);
    }
}
