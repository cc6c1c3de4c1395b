//! Kubernetes events on ScaledObjects with KEDA's reasons and messages, recorded only by the
//! leader. Publishing failures are logged, never fatal: an event is a courtesy, not state.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::debug;

use crate::crd::ScaledObject;

/// Records events as the `keda-operator` controller (KEDA's reporting controller name, kept so
/// existing event filters still match).
#[derive(Clone)]
pub struct EventSink {
    recorder: Recorder,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink").finish_non_exhaustive()
    }
}

impl EventSink {
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: "keda-operator".to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    async fn publish(&self, so: &ScaledObject, type_: EventType, reason: &str, message: &str) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(message.to_owned()),
            action: reason.to_owned(),
            secondary: None,
        };
        let reference = so.object_ref(&());
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            debug!(reason, error = %error, "publishing an event failed");
        }
    }

    pub async fn normal(&self, so: &ScaledObject, reason: &str, message: &str) {
        self.publish(so, EventType::Normal, reason, message).await;
    }

    pub async fn warning(&self, so: &ScaledObject, reason: &str, message: &str) {
        self.publish(so, EventType::Warning, reason, message).await;
    }

    /// An event the engine's decision asked for.
    pub async fn engine(&self, so: &ScaledObject, event: &scaler_core::decision::Event) {
        let type_ = match event.event_type {
            scaler_core::decision::EventType::Normal => EventType::Normal,
            scaler_core::decision::EventType::Warning => EventType::Warning,
        };
        self.publish(so, type_, event.reason, &event.message).await;
    }
}
