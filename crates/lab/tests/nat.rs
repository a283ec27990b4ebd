//! The NAT topology with the director's kernel doing the director's job:
//! nftables DNAT (round robin, like `ipvsadm -s rr`) and plain forwarding,
//! the two kernel baselines of the packet-rate benchmark (root only).

use std::time::Duration;

use xvs_lab::{Family, Mode, Topology, or_skip, pattern, ready};

const HTTP: u16 = 80;
const UDP: u16 = 5353;
const T: Duration = Duration::from_secs(5);

fn nat_lab(what: &str) -> Option<Topology> {
    if !ready(what, &["ethtool", "nft"]) {
        return None;
    }
    or_skip(what, Topology::builder(Mode::Nat).real_servers(2).build())
}

#[test]
fn nat_nft_dnat_alternates_real_servers() {
    let Some(lab) = nat_lab("nat_nft_dnat_alternates_real_servers") else {
        return;
    };
    let _echo = lab.start_echo(HTTP, UDP).expect("echo servers");
    let client = lab.client();
    // The director does not forward by itself: the VIP is its own address
    // and nothing listens there.
    assert_eq!(
        lab.director().sysctl_get("net.ipv4.ip_forward").unwrap(),
        "0"
    );
    assert!(
        client
            .http_get(lab.vip_addr(Family::V4, HTTP), "/")
            .is_err()
    );

    or_skip("nftables DNAT", lab.enable_nft_dnat(&[HTTP, UDP])).expect("nftables NAT");
    for family in Family::ALL {
        let names: Vec<String> = (0..4)
            .map(|_| {
                let r = client
                    .http_get(lab.vip_addr(family, HTTP), "/")
                    .unwrap_or_else(|e| panic!("{family:?}: {e}"));
                // The real server sees the client itself, at its own address.
                let seen = r.header("x-client-addr").unwrap_or_default().to_owned();
                assert!(
                    seen.contains(&client.addr(family).to_string()),
                    "{family:?} {seen}"
                );
                r.text()
            })
            .collect();
        assert!(
            names.iter().all(|n| n == "rs1\n" || n == "rs2\n"),
            "{names:?}"
        );
        assert!(
            names.windows(2).all(|w| w[0] != w[1]),
            "not round robin: {names:?}"
        );

        let (answer, from) = client
            .udp_request(lab.vip_addr(family, UDP), b"x", T)
            .expect("UDP through DNAT");
        assert!(answer == b"rs1\nx" || answer == b"rs2\nx", "{answer:?}");
        assert_eq!(from, lab.vip_addr(family, UDP), "un-NATed answer");

        let r = client
            .http_get(lab.vip_addr(family, HTTP), "/bytes/3000000")
            .expect("big GET");
        assert_eq!(pattern::first_mismatch(0, &r.body), None);
        assert_eq!(r.body.len(), 3_000_000);
    }

    lab.disable_kernel_director().unwrap();
    assert_eq!(
        lab.director().sysctl_get("net.ipv4.ip_forward").unwrap(),
        "0"
    );
    assert!(
        client
            .http_get_timeout(lab.vip_addr(Family::V4, HTTP), "/", Duration::from_secs(1))
            .is_err()
    );
}

#[test]
fn nat_kernel_forwarding_reaches_real_servers() {
    let Some(lab) = nat_lab("nat_kernel_forwarding_reaches_real_servers") else {
        return;
    };
    let _echo = lab.start_echo(HTTP, 0).expect("echo servers");
    let client = lab.client();
    let rs2 = &lab.real_servers()[1];
    lab.enable_kernel_forwarding().unwrap();
    for family in Family::ALL {
        let to = std::net::SocketAddr::new(rs2.addr(family), HTTP);
        let r = client
            .http_get(to, "/")
            .unwrap_or_else(|e| panic!("{family:?}: {e}"));
        assert_eq!(r.text(), "rs2\n");
        assert_eq!(r.header("x-local-addr"), Some(to.to_string().as_str()));
    }
    lab.disable_kernel_director().unwrap();
    let to = std::net::SocketAddr::new(rs2.addr(Family::V4), HTTP);
    assert!(
        client
            .http_get_timeout(to, "/", Duration::from_secs(1))
            .is_err()
    );
}
