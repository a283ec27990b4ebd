//! xvs control plane: the admin protocol shared by `xvsd` and `xvsadm`.
//!
//! The protocol, the socket server and the `xvsadm` CLI land with the admin
//! API work (issue "Admin API and xvsadm"); this crate holds the place in
//! the workspace layout so that dependants can be wired without churn.
#![forbid(unsafe_code)]
