//! Embedding a node in a host application: the host's own devices
//! ([`NodeBuilder::device`](crate::NodeBuilder::device)) and hb's routes
//! mounted in the host's actix-web `App` ([`Node::routes`]). See
//! docs/embedding.md.

use std::sync::Arc;

use actix_web::web;
use hb_device::Device;

use crate::node::{Node, NodeError, BUILT_IN_DEVICES};

/// The lower-case names of the host's devices, checked: each a valid
/// `name@version`, none a built-in device's (`test-device@1.0` counts
/// only when the node registers it), none twice.
pub(crate) fn custom_device_names(
    devices: &[Arc<dyn Device>],
    test_devices: bool,
) -> Result<Vec<String>, NodeError> {
    let mut names: Vec<String> = Vec::with_capacity(devices.len());
    for device in devices {
        let name = device.name().to_string();
        let refused = |detail: String| NodeError::Device {
            name: name.clone(),
            detail,
        };
        hb_device::validate_device_name(&name).map_err(|e| refused(e.to_string()))?;
        let lower = name.to_ascii_lowercase();
        let built_in = BUILT_IN_DEVICES.contains(&lower.as_str())
            && (test_devices || lower != hb_process::test_device::NAME);
        if built_in || lower == "message@1.0" {
            return Err(refused("a built-in device has that name".into()));
        }
        if names.contains(&lower) {
            return Err(refused(
                "another device given to the builder has that name".into(),
            ));
        }
        names.push(lower);
    }
    Ok(names)
}

impl Node {
    /// hb's routes, for the host's own actix-web `App`:
    /// `App::new().configure(node.routes())` serves them at the root,
    /// `App::new().service(web::scope("/hb").configure(node.routes()))`
    /// under `/hb` (paths are then read relative to the scope). Every
    /// mounted route runs in the same wrapper as the node's own server's
    /// (a `tracing` span, metrics, panics answered 500, 503 `unavailable`
    /// once [`Node::shutdown`] starts, and the drain). The routes end in a
    /// catch-all, so register the host's own routes before them, or mount
    /// hb under a scope.
    pub fn routes(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        crate::http::mount(self.state.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_device::{async_trait, Context, DeviceInfo, Outcome, ResolveError};
    use hb_message::{Key, Message};

    struct Named(&'static str);

    #[async_trait]
    impl Device for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn info(&self) -> DeviceInfo {
            DeviceInfo::handler()
        }
        async fn call(
            &self,
            _key: &Key,
            base: Message,
            _request: &Message,
            _ctx: &Context,
        ) -> Result<Outcome, ResolveError> {
            Ok(Outcome::Ok(base))
        }
    }

    fn names(list: &[&'static str], test_devices: bool) -> Result<Vec<String>, NodeError> {
        let devices: Vec<Arc<dyn Device>> = list
            .iter()
            .map(|n| Arc::new(Named(n)) as Arc<dyn Device>)
            .collect();
        custom_device_names(&devices, test_devices)
    }

    #[test]
    fn host_devices_are_named_once_and_never_as_a_built_in() {
        assert_eq!(
            names(&["Counter@1.0", "ledger@2"], false).unwrap(),
            vec!["counter@1.0".to_string(), "ledger@2".to_string()]
        );
        for bad in [
            &["counter"][..],
            &["lua@5.3a"],
            &["Message@1.0"],
            &["a@1", "A@1"],
        ] {
            assert!(
                matches!(names(bad, false), Err(NodeError::Device { .. })),
                "{bad:?}"
            );
        }
        // test-device@1.0 is the host's to provide when the node's is off.
        assert!(names(&["test-device@1.0"], false).is_ok());
        assert!(names(&["test-device@1.0"], true).is_err());
    }
}
