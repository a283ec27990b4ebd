//! The one error type of the grammar, the restore reader and
//! [`crate::Command::validate`].

use xvs_sched::SchedError;

/// Why a command line, a restore line or a command is refused.
///
/// Each message is one line that names the option or value at fault; the
/// `xvsadm` binary prints it and exits with status 2, as ipvsadm does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrammarError {
    /// An option the grammar does not know.
    #[error("unknown option `{0}` (try --help)")]
    UnknownOption(String),
    /// An option that takes a value was given none.
    #[error("option `{0}` needs a value")]
    MissingValue(String),
    /// The same option twice.
    #[error("option `{0}` given more than once")]
    RepeatedOption(String),
    /// A word that is neither an option nor an option's value.
    #[error("unexpected argument `{0}`")]
    UnexpectedArgument(String),
    /// Options but no command.
    #[error(
        "no command given (one of -A -E -D -C -a -e -d -L -Z -S -R --set --start-daemon --stop-daemon -h -v)"
    )]
    NoCommand,
    /// Two commands in one line.
    #[error("more than one command given: {0} and {1}")]
    MultipleCommands(&'static str, &'static str),
    /// An option the command does not take.
    #[error("{option} is not allowed with {command}")]
    IllegalOption {
        /// The option.
        option: &'static str,
        /// The command.
        command: &'static str,
    },
    /// An option the command needs.
    #[error("{command} needs {option}")]
    MissingOption {
        /// The option.
        option: &'static str,
        /// The command.
        command: &'static str,
    },
    /// Two options that exclude each other.
    #[error("{0} and {1} cannot be used together")]
    Conflict(&'static str, &'static str),
    /// A value out of range or of the wrong form.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidValue {
        /// What the value is for (`weight`, `real server address`...).
        what: &'static str,
        /// The value as given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A host name where an address is expected: names are not resolved.
    #[error(
        "`{0}` is a host name: xvs does not resolve host names, give a numeric IPv4 address or [IPv6] address"
    )]
    HostName(String),
    /// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`).
    #[error("`{0}` is an IPv4-mapped IPv6 address: write the IPv4 address instead")]
    MappedAddress(String),
    /// A service protocol other than TCP, UDP and SCTP.
    #[error("a virtual service is TCP (-t), UDP (-u) or SCTP (--sctp-service)")]
    BadProtocol,
    /// A scheduler that is not one of [`xvs_sched::NAMES`].
    #[error("unknown scheduler `{0}` (one of {names})", names = xvs_sched::NAMES.join(", "))]
    UnknownScheduler(String),
    /// A bad `-b` argument.
    #[error("-b (--sched-flags): {0}")]
    SchedFlags(SchedError),
    /// `-6` on a service that is not a fwmark service.
    #[error("-6 (--ipv6) is only for fwmark services (-f)")]
    Ipv6WithoutFwmark,
    /// A port-zero service without `-p`.
    #[error("a service without a port (port 0) must be persistent (-p)")]
    ZeroPortNotPersistent,
    /// `-o` on a TCP or SCTP service.
    #[error("one-packet scheduling (-o) is only for UDP and fwmark services")]
    OnePacketNotUdp,
    /// A real server of the other address family, not tunnelled.
    #[error("a real server of another address family than its service needs tunnelling (-i)")]
    FamilyMismatch,
    /// A `-g`/`-i` real server whose port is not the service's.
    #[error(
        "real server port {dest} differs from service port {svc}: -g and -i cannot change the port (use -m)"
    )]
    DestPortMismatch {
        /// The real server's port.
        dest: u16,
        /// The service's port.
        svc: u16,
    },
    /// A `-m` real server with port 0 on a service with a port.
    #[error(
        "real server port 0 is only for port-zero and fwmark services: give the port, or leave it out to use the service's"
    )]
    DestPortZero,
    /// `-y` above `-x` (the kernel refuses it, even when `-x` is 0).
    #[error("lower threshold (-y {lower}) is above upper threshold (-x {upper})")]
    ThresholdOrder {
        /// `-x`.
        upper: u32,
        /// `-y`.
        lower: u32,
    },
    /// A tunnel option without `-i`.
    #[error("tunnel options (--tun-*) need the tunnel forwarding method (-i)")]
    TunnelWithoutIpip,
    /// A tunnel option the tunnel type does not take.
    #[error("{option} is not allowed with tunnel type {tun}")]
    IllegalTunnelOption {
        /// The option.
        option: &'static str,
        /// The tunnel type.
        tun: &'static str,
    },
    /// A tunnel option the tunnel type needs.
    #[error("tunnel type {tun} needs {option}")]
    MissingTunnelOption {
        /// The option.
        option: &'static str,
        /// The tunnel type.
        tun: &'static str,
    },
    /// `--set` without its three values.
    #[error("--set needs three timeout values: tcp tcpfin udp")]
    SetNeedsThree,
    /// A command that only makes sense interactively, in restore input.
    #[error("{0} cannot appear in restore input or a config file")]
    NotInRestore(&'static str),
    /// A quote opened and not closed.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// Any other command-line error, as one line.
    #[error("{0}")]
    Other(String),
}
