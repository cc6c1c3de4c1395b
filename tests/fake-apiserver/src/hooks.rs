//! Test-facing records and knobs: the request log, fault injection and review handlers.

use std::sync::Arc;

use serde_json::Value;

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or `discovery` for non-resource paths.
    pub verb: String,
    /// HTTP method.
    pub method: String,
    /// Request path without the query.
    pub path: String,
    /// API group (`""` for core or non-resource paths).
    pub group: String,
    /// Plural resource name, `""` for non-resource paths.
    pub plural: String,
    /// Namespace in the path, if any.
    pub namespace: Option<String>,
    /// Object name in the path, if any.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`), if any.
    pub subresource: Option<String>,
    /// Raw query string.
    pub query: String,
    /// `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// HTTP status code of the response (200 for a watch that started).
    pub code: u16,
}

/// Selects requests for fault injection; unset fields match anything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestMatcher {
    /// Kubernetes verb (`update`, `patch`, …).
    pub verb: Option<String>,
    /// Plural resource name.
    pub plural: Option<String>,
    /// Subresource; `Some("")` matches only requests without one.
    pub subresource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
}

impl RequestMatcher {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches a verb on a resource, e.g. `("patch", "scaledobjects")`.
    pub fn verb(verb: &str, plural: &str) -> Self {
        Self {
            verb: Some(verb.into()),
            plural: Some(plural.into()),
            ..Self::default()
        }
    }

    /// Restricts to a subresource (`""` for the main resource).
    #[must_use]
    pub fn subresource(mut self, sub: &str) -> Self {
        self.subresource = Some(sub.into());
        self
    }

    /// Restricts to a namespace.
    #[must_use]
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Restricts to an object name.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    pub(crate) fn matches(&self, r: &RequestRecord) -> bool {
        let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        eq(&self.verb, &r.verb)
            && eq(&self.plural, &r.plural)
            && eq(&self.subresource, r.subresource.as_deref().unwrap_or(""))
            && eq(&self.namespace, r.namespace.as_deref().unwrap_or(""))
            && eq(&self.name, r.name.as_deref().unwrap_or(""))
    }
}

/// An armed fault: the next `remaining` matching requests fail with `code`.
#[derive(Clone, Debug)]
pub(crate) struct Fault {
    pub matcher: RequestMatcher,
    pub code: u16,
    pub remaining: usize,
}

/// Answers a review: gets the request's `spec`, returns the `status` to send back.
pub type ReviewHandler = Arc<dyn Fn(&Value) -> Value + Send + Sync>;
