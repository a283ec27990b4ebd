//! The admin protocol's daemon side: [`xvs_ctl::server::Handler`] over the
//! control state.
//!
//! The server serialises calls; the lock here is shared only with the
//! control loop's ticks, never with a worker.

use std::sync::Arc;

use parking_lot::Mutex;
use xvs_ctl::proto::{PROTOCOL_VERSION, Request, Response};
use xvs_ctl::server::Handler;

use super::Control;

/// Answers `xvsadm`'s requests from the [`Control`] state.
#[derive(Debug)]
pub struct CtlHandler {
    control: Arc<Mutex<Control>>,
}

impl CtlHandler {
    /// A handler over `control`.
    pub fn new(control: Arc<Mutex<Control>>) -> CtlHandler {
        CtlHandler { control }
    }
}

impl Handler for CtlHandler {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Ping => Response::Ok,
            Request::Version => Response::Version {
                daemon: format!("xvsd {}", env!("CARGO_PKG_VERSION")),
                protocol: PROTOCOL_VERSION,
            },
            Request::Apply { commands, dry_run } => {
                match self.control.lock().apply(&commands, dry_run) {
                    Ok(()) => Response::Ok,
                    Err((i, message)) => Response::Error {
                        index: Some(i),
                        message,
                    },
                }
            }
            Request::GetState { service } => match self.control.lock().state(service.as_ref()) {
                Ok(s) => Response::State(s),
                Err(message) => Response::error(message),
            },
            Request::GetConnections => Response::Connections(self.control.lock().connections()),
            Request::GetTimeouts => Response::Timeouts(self.control.lock().timeouts()),
            Request::GetDaemons => Response::Daemons(self.control.lock().daemons()),
            Request::GetCounters => Response::Counters(Box::new(self.control.lock().counters())),
        }
    }
}
