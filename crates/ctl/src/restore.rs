//! Restore input (`ipvsadm -R`, `ipvsadm-restore`) and `xvsd --config`
//! files: one command per line.
//!
//! A line is split into words as a shell would for simple cases: white
//! space separates words, `'...'` and `"..."` quote (in double quotes a
//! backslash escapes `"`, `\`, `$` and `` ` ``), a backslash outside quotes
//! escapes the next character, and a `#` that starts a word starts a
//! comment. Blank lines and comment lines are skipped. A leading
//! `ipvsadm` or `xvsadm` word (or a path ending in one) is dropped, so
//! both `ipvsadm-save` output and a script of `ipvsadm ...` lines read
//! back. Each line is then parsed by [`crate::parse_args_with`] and must be
//! a command that changes the director: listing, saving, restoring, help,
//! version and `--dry-run` lines are refused (ipvsadm runs listings found
//! in its input, which a config file has no use for).

use crate::{Command, GrammarError, Services, grammar::parse_args_with};

/// Parses restore input with port names from `/etc/services`. On error,
/// gives the 1-based line number and the error of that line; nothing is
/// returned for the lines before it, so a caller applies all or nothing.
pub fn parse_restore(text: &str) -> Result<Vec<Command>, (usize, GrammarError)> {
    parse_restore_with(text, Services::system())
}

/// [`parse_restore`] with the given port name table.
pub fn parse_restore_with(
    text: &str,
    services: &Services,
) -> Result<Vec<Command>, (usize, GrammarError)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let no = i + 1;
        let words = split_words(line).map_err(|e| (no, e))?;
        let mut args = &words[..];
        if args.first().is_some_and(|w| is_program(w)) {
            args = &args[1..];
        }
        if args.is_empty() {
            continue;
        }
        let cmd = parse_args_with(args, services).map_err(|e| (no, e))?;
        if !cmd.is_change() {
            return Err((no, GrammarError::NotInRestore(cmd.option())));
        }
        out.push(cmd);
    }
    Ok(out)
}

fn is_program(w: &str) -> bool {
    let base = w.rsplit('/').next().unwrap_or(w);
    base == "ipvsadm" || base == "xvsadm"
}

/// Splits one line into words (see the module documentation).
pub fn split_words(line: &str) -> Result<Vec<String>, GrammarError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(GrammarError::UnterminatedQuote),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => return Err(GrammarError::UnterminatedQuote),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(GrammarError::UnterminatedQuote),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().unwrap_or('\\'));
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::*;
    use std::net::IpAddr;
    use xvs_conntrack::{Af, Fwd, Proto};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn restore(text: &str) -> Result<Vec<Command>, (usize, GrammarError)> {
        parse_restore_with(text, &Services::parse("http 80/tcp www\nhttps 443/tcp\n"))
    }

    #[test]
    fn words_split_like_a_shell() {
        let w = |s| split_words(s).unwrap();
        assert_eq!(w("  -A  -t\t192.0.2.1:80 "), ["-A", "-t", "192.0.2.1:80"]);
        assert_eq!(w("-s 'r'r \"w\"lc"), ["-s", "rr", "wlc"]);
        assert_eq!(w("a '' b"), ["a", "", "b"]);
        assert_eq!(w(r#""a \"b\" \x" c\ d"#), [r#"a "b" \x"#, "c d"]);
        assert_eq!(w("-A # a comment"), ["-A"]);
        assert_eq!(w("a#b"), ["a#b"]);
        assert_eq!(w("'#' x"), ["#", "x"]);
        assert_eq!(w("# only a comment"), Vec::<String>::new());
        assert_eq!(w("-C\r"), ["-C"]);
        assert_eq!(split_words("'open"), Err(GrammarError::UnterminatedQuote));
        assert_eq!(split_words("\"open"), Err(GrammarError::UnterminatedQuote));
    }

    /// A file as an operator would keep beside keepalived: comments, blank
    /// lines, an `ipvsadm` prefix on some lines, DR web servers with
    /// persistence, a NAT DNS service, an fwmark service, timeouts.
    #[test]
    fn keepalived_like_file() {
        let text = "\
# /etc/xvs/xvs.conf -- generated by hand, kept in git
# web: DR, persistent per /24

-A -t 192.0.2.10:http -s wrr -p 600 -M 255.255.255.0
-a -t 192.0.2.10:80 -r 10.0.0.11 -g -w 3
-a -t 192.0.2.10:80 -r 10.0.0.12:80 -g -w 2
ipvsadm -a -t 192.0.2.10:80 -r 10.0.0.13 -w 0     # quiesced for maintenance

# DNS over NAT
/sbin/ipvsadm -A -u [2001:db8::53]:53 -s rr -o
-a -u [2001:db8::53]:53 -r [fd00::5]:5353 -m -x 1000 -y 800
   
# fwmark 7 (https + http, marked by nftables), tunnelled
-A -f 7 -s sh -b sh-port,sh-fallback -p
-a -f 7 -r 198.51.100.7 -i --tun-type gue --tun-port 6080 --tun-csum
--set 900 120 300
--start-daemon master --mcast-interface eth1 --syncid 7
";
        let cmds = restore(text).unwrap();
        assert_eq!(cmds.len(), 10);
        let web = SvcKey::Tuple {
            proto: Proto::Tcp,
            addr: ip("192.0.2.10"),
            port: 80,
        };
        assert_eq!(
            cmds[0],
            Command::AddService {
                svc: web,
                opts: ServiceOpts {
                    scheduler: "wrr".into(),
                    persistence: Some(600),
                    netmask: Some(24),
                    ..ServiceOpts::default()
                }
            }
        );
        let mut d = DestOpts::new(ip("10.0.0.11"), 80);
        d.weight = 3;
        assert_eq!(cmds[1], Command::AddDest { svc: web, dest: d });
        let Command::AddDest { dest, .. } = &cmds[3] else {
            panic!("{:?}", cmds[3])
        };
        assert_eq!(
            (dest.addr, dest.port, dest.weight),
            (ip("10.0.0.13"), 80, 0)
        );
        let dns = SvcKey::Tuple {
            proto: Proto::Udp,
            addr: ip("2001:db8::53"),
            port: 53,
        };
        assert!(
            matches!(&cmds[4], Command::AddService { svc, opts } if *svc == dns && opts.one_packet)
        );
        let Command::AddDest { dest, .. } = &cmds[5] else {
            panic!()
        };
        assert_eq!(
            (dest.fwd, dest.port, dest.upper, dest.lower),
            (Fwd::Masq, 5353, 1000, 800)
        );
        let fw = SvcKey::Fwmark {
            mark: 7,
            af: Af::V4,
        };
        let Command::AddDest { svc, dest } = &cmds[7] else {
            panic!()
        };
        assert_eq!(*svc, fw);
        assert_eq!(dest.port, 0);
        assert_eq!(dest.tun_type, TunType::Gue { port: 6080 });
        assert_eq!(dest.tun_csum, TunCsum::Csum);
        assert_eq!(
            cmds[8],
            Command::SetTimeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300
            }
        );
        assert!(
            matches!(&cmds[9], Command::StartDaemon(d) if d.syncid == 7 && d.mcast_iface == "eth1")
        );
        // The start-daemon line is line 17 of the file.
        let bad = text.replace("--syncid 7", "--syncid 700");
        let (line, err) = restore(&bad).unwrap_err();
        assert_eq!(line, 17);
        assert!(err.to_string().contains("syncid"), "{err}");
    }

    #[test]
    fn errors_carry_the_line_number() {
        let (line, err) = restore("-C\n\n-A -t 192.0.2.1:80 -s nope\n").unwrap_err();
        assert_eq!(line, 3);
        assert_eq!(err, GrammarError::UnknownScheduler("nope".into()));
        let (line, err) = restore("# x\n-a -t 192.0.2.1:80 -r 'unterminated\n").unwrap_err();
        assert_eq!((line, err), (2, GrammarError::UnterminatedQuote));
    }

    #[test]
    fn only_changes_belong_in_restore_input() {
        for (line, opt) in [
            ("-L -n", "-L"),
            ("-S", "-S"),
            ("-R", "-R"),
            ("-h", "-h"),
            ("-v", "-v"),
            ("-L --timeout", "-L"),
            ("-C --dry-run", "--dry-run"),
        ] {
            assert_eq!(
                restore(line),
                Err((1, GrammarError::NotInRestore(opt))),
                "{line}"
            );
        }
        assert!(restore("-Z\n-D -t 192.0.2.1:80\n--stop-daemon backup\n").is_ok());
        // A word alone that is the program name is an empty line.
        assert_eq!(restore("ipvsadm\nxvsadm\n"), Ok(vec![]));
        // An empty input is an empty table.
        assert_eq!(restore(""), Ok(vec![]));
    }
}
