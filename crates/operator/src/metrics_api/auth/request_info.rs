//! What a request asks to do, derived from its method and path the way the Kubernetes
//! apiserver's `RequestInfoFactory` derives it; these are the SubjectAccessReview attributes.
//!
//! The derivation matters because RBAC rules match it. For the HPA's request
//! `GET /apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-foo?labelSelector=…` the
//! apiserver sees a *resource* request with group `external.metrics.k8s.io`, version
//! `v1beta1`, namespace `ns`, resource `s0-foo` (the metric name), no name, and verb `list`
//! (a GET without a name is a list). KEDA's `keda-external-metrics-reader` role grants
//! resources `*` and verbs `*` for exactly that reason. Discovery paths
//! (`/apis`, `/apis/<group>`, `/apis/<group>/<version>`) are non-resource requests with verb
//! `get`, allowed to every authenticated user by the `system:discovery` role.

use axum::http::Method;

/// The attributes one request is authorised on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestAttributes {
    /// `/api/...` and `/apis/<group>/<version>/...`.
    Resource {
        verb: String,
        namespace: String,
        group: String,
        version: String,
        resource: String,
        subresource: String,
        name: String,
    },
    /// Everything else (discovery, health, OpenAPI); the verb is the lower-cased method.
    NonResource { verb: String, path: String },
}

/// Verbs that can stand as the first path element after the version.
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Path elements after `namespaces/<name>` that address the namespace itself.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Derives the attributes of `method path?query`; `path` is as received (percent-encoded).
pub fn request_attributes(method: &Method, path: &str, query: Option<&str>) -> RequestAttributes {
    let path = percent_decode(path);
    let non_resource = || RequestAttributes::NonResource {
        verb: method.as_str().to_lowercase(),
        path: path.clone(),
    };
    let trimmed = path.trim_matches('/');
    let parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return non_resource();
    }
    let mut rest = &parts[1..];
    let mut group = "";
    if parts[0] == "apis" {
        if rest.len() < 3 {
            return non_resource();
        }
        group = rest[0];
        rest = &rest[1..];
    }
    let version = rest[0];
    rest = &rest[1..];

    let mut verb = if let Some(special) = SPECIAL_VERBS.iter().find(|v| **v == rest[0]) {
        rest = &rest[1..];
        (*special).to_owned()
    } else {
        match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_owned()
    };

    let mut namespace = "";
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = rest[1];
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }

    let resource = rest.first().copied().unwrap_or_default();
    let mut name = rest.get(1).copied().unwrap_or_default().to_owned();
    let subresource = if verb != "proxy" {
        rest.get(2).copied().unwrap_or_default()
    } else {
        ""
    };

    if name.is_empty() && verb == "get" {
        let (watch, field_name) = list_options(query.unwrap_or_default());
        verb = if watch { "watch" } else { "list" }.to_owned();
        if let Some(field_name) = field_name {
            name = field_name;
        }
    }
    if name.is_empty() && verb == "delete" {
        verb = "deletecollection".to_owned();
    }

    RequestAttributes::Resource {
        verb,
        namespace: namespace.to_owned(),
        group: group.to_owned(),
        version: version.to_owned(),
        resource: resource.to_owned(),
        subresource: subresource.to_owned(),
        name,
    }
}

/// The two list options that change the attributes: `watch` (a Go bool) and a
/// `fieldSelector` that pins `metadata.name`.
fn list_options(query: &str) -> (bool, Option<String>) {
    let mut watch = false;
    let mut name = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(&value.replace('+', " "));
        match key {
            "watch" => watch = matches!(value.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
            "fieldSelector" => {
                name = value.split(',').find_map(|term| {
                    let (field, wanted) = term.split_once("==").or_else(|| term.split_once('='))?;
                    (field.trim() == "metadata.name")
                        .then(|| wanted.trim().to_owned())
                        .filter(|n| !n.is_empty() && !n.contains('/') && n != "." && n != "..")
                });
            }
            _ => {}
        }
    }
    (watch, name)
}

/// `%XX` decoding as Go's URL parser does for paths; malformed escapes are kept verbatim.
pub fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(
        verb: &str,
        namespace: &str,
        group: &str,
        version: &str,
        resource: &str,
        subresource: &str,
        name: &str,
    ) -> RequestAttributes {
        RequestAttributes::Resource {
            verb: verb.to_owned(),
            namespace: namespace.to_owned(),
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn the_hpa_request_is_a_namespaced_list_of_the_metric_resource() {
        assert_eq!(
            request_attributes(
                &Method::GET,
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-foo",
                Some("labelSelector=scaledobject.keda.sh%2Fname%3Dso"),
            ),
            resource(
                "list",
                "ns",
                "external.metrics.k8s.io",
                "v1beta1",
                "s0-foo",
                "",
                ""
            )
        );
    }

    #[test]
    fn discovery_and_health_are_non_resource_gets() {
        for path in [
            "/",
            "/apis",
            "/apis/external.metrics.k8s.io",
            "/apis/external.metrics.k8s.io/v1beta1",
            "/healthz",
            "/openapi/v2",
        ] {
            assert_eq!(
                request_attributes(&Method::GET, path, None),
                RequestAttributes::NonResource {
                    verb: "get".to_owned(),
                    path: path.to_owned()
                },
                "{path}"
            );
        }
        assert_eq!(
            request_attributes(&Method::POST, "/apis", None),
            RequestAttributes::NonResource {
                verb: "post".to_owned(),
                path: "/apis".to_owned()
            }
        );
    }

    #[test]
    fn methods_names_watch_and_subresources_follow_the_apiserver() {
        let g = "external.metrics.k8s.io";
        let v = "v1beta1";
        let cases = [
            (
                Method::GET,
                "/apis/g/v1/namespaces/ns/things/a",
                None,
                resource("get", "ns", "g", "v1", "things", "", "a"),
            ),
            (
                Method::GET,
                "/apis/g/v1/namespaces/ns/things/a/status",
                None,
                resource("get", "ns", "g", "v1", "things", "status", "a"),
            ),
            (
                Method::GET,
                "/apis/g/v1/things",
                Some("watch=true"),
                resource("watch", "", "g", "v1", "things", "", ""),
            ),
            (
                Method::GET,
                "/apis/g/v1/watch/namespaces/ns/things",
                None,
                resource("watch", "ns", "g", "v1", "things", "", ""),
            ),
            (
                Method::GET,
                "/apis/g/v1/namespaces/ns/things",
                Some("fieldSelector=metadata.name%3Db"),
                resource("list", "ns", "g", "v1", "things", "", "b"),
            ),
            (
                Method::DELETE,
                "/apis/g/v1/namespaces/ns/things",
                None,
                resource("deletecollection", "ns", "g", "v1", "things", "", ""),
            ),
            (
                Method::DELETE,
                "/apis/g/v1/namespaces/ns/things/a",
                None,
                resource("delete", "ns", "g", "v1", "things", "", "a"),
            ),
            (
                Method::POST,
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m",
                None,
                resource("create", "ns", g, v, "m", "", ""),
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/ns/pods/p",
                None,
                resource("update", "ns", "", "v1", "pods", "", "p"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns",
                None,
                resource("get", "ns", "", "v1", "namespaces", "", "ns"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/status",
                None,
                resource("get", "ns", "", "v1", "namespaces", "status", "ns"),
            ),
            (
                Method::GET,
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-a%3Ab",
                None,
                resource("list", "ns", g, v, "s0-a:b", "", ""),
            ),
        ];
        for (method, path, query, expected) in cases {
            assert_eq!(
                request_attributes(&method, path, query),
                expected,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
