//! The resource registry: which group/version/plural exists, its kind, scope, subresources and
//! verbs. Discovery documents and request routing are both derived from it, so a resource that
//! is not registered is a 404 everywhere, as on a real cluster without the CRD.

use std::collections::BTreeMap;

/// Where a resource keeps the numbers its `/scale` subresource exposes, as dotted paths in the
/// style of a CRD's `subresources.scale` (`.spec.replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// Path of the desired replica count, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// Path of the observed replica count, e.g. `.status.replicas`.
    pub status_replicas: String,
    /// Path of the pod selector: either a label-selector string (as CRDs keep it, e.g.
    /// `.status.selector`) or a `LabelSelector` object (as Deployments keep it at
    /// `.spec.selector`), rendered as a string in the `Scale` either way.
    pub label_selector: Option<String>,
}

impl ScalePaths {
    /// The usual layout: `.spec.replicas`, `.status.replicas`, and a selector at the given path.
    pub fn standard(label_selector: Option<&str>) -> Self {
        Self {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: label_selector.map(str::to_string),
        }
    }
}

/// What a review resource (`TokenReview`, `SubjectAccessReview`) is: create-only, answered by
/// a handler the test installs instead of being stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewKind {
    /// `authentication.k8s.io/v1` `tokenreviews`.
    Token,
    /// `authorization.k8s.io/v1` `subjectaccessreviews`.
    SubjectAccess,
}

/// One served resource, like one version of a CRD.
#[derive(Clone, Debug)]
pub struct ResourceDef {
    /// API group, `""` for the core group.
    pub group: String,
    /// Version served (one per resource in this server).
    pub version: String,
    /// Kind, e.g. `ScaledObject`.
    pub kind: String,
    /// Plural resource name used in paths, e.g. `scaledobjects`.
    pub plural: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether a `/status` subresource exists (the main endpoint then ignores `status`).
    pub status: bool,
    /// The `/scale` subresource, when the resource has one.
    pub scale: Option<ScalePaths>,
    /// Whether `metadata.generation` is maintained (CRDs and workload kinds do; ConfigMaps don't).
    pub tracks_generation: bool,
    /// Whether PUT without `metadata.resourceVersion` is accepted (true for most built-in kinds,
    /// false for custom resources, as on a real server).
    pub allow_unconditional_update: bool,
    /// Short names for discovery.
    pub short_names: Vec<String>,
    /// Set for create-only review resources answered by a test handler.
    pub review: Option<ReviewKind>,
}

impl ResourceDef {
    /// A custom resource as a CRD would declare it: generation tracked, no unconditional update,
    /// no subresources (add them with [`ResourceDef::with_status`] / [`ResourceDef::with_scale`]).
    pub fn custom(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            status: false,
            scale: None,
            tracks_generation: true,
            allow_unconditional_update: false,
            short_names: Vec::new(),
            review: None,
        }
    }

    /// Adds the `/status` subresource.
    #[must_use]
    pub fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    /// Adds the `/scale` subresource.
    #[must_use]
    pub fn with_scale(mut self, paths: ScalePaths) -> Self {
        self.scale = Some(paths);
        self
    }

    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` or `configmaps`, as the API server names a resource in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Lowercased kind, the singular name in discovery.
    pub fn singular(&self) -> String {
        self.kind.to_lowercase()
    }

    pub(crate) fn verbs(&self) -> Vec<&'static str> {
        if self.review.is_some() {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            tracks_generation: false,
            allow_unconditional_update: true,
            ..Self::custom(group, version, kind, plural, namespaced)
        }
    }

    fn generation(mut self) -> Self {
        self.tracks_generation = true;
        self
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// Storage and lookup key of a resource: objects are shared by group and plural.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ResKey {
    pub group: String,
    pub plural: String,
}

impl ResKey {
    pub fn of(def: &ResourceDef) -> Self {
        Self {
            group: def.group.clone(),
            plural: def.plural.clone(),
        }
    }
}

/// All served resources.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    defs: BTreeMap<ResKey, ResourceDef>,
}

impl Registry {
    /// The built-in resources listed in the crate docs.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        let deploy_scale = ScalePaths::standard(Some(".spec.selector"));
        for def in [
            ResourceDef::builtin("", "v1", "Namespace", "namespaces", false)
                .with_status()
                .short(&["ns"]),
            ResourceDef::builtin("", "v1", "Pod", "pods", true)
                .with_status()
                .short(&["po"]),
            ResourceDef::builtin("", "v1", "Secret", "secrets", true),
            ResourceDef::builtin("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
            ResourceDef::builtin("", "v1", "Event", "events", true).short(&["ev"]),
            ResourceDef::builtin("", "v1", "Service", "services", true)
                .with_status()
                .short(&["svc"]),
            ResourceDef::builtin("", "v1", "ServiceAccount", "serviceaccounts", true)
                .short(&["sa"]),
            ResourceDef::builtin("", "v1", "LimitRange", "limitranges", true).short(&["limits"]),
            ResourceDef::builtin("apps", "v1", "Deployment", "deployments", true)
                .generation()
                .with_status()
                .with_scale(deploy_scale.clone())
                .short(&["deploy"]),
            ResourceDef::builtin("apps", "v1", "StatefulSet", "statefulsets", true)
                .generation()
                .with_status()
                .with_scale(deploy_scale.clone())
                .short(&["sts"]),
            ResourceDef::builtin("apps", "v1", "ReplicaSet", "replicasets", true)
                .generation()
                .with_status()
                .with_scale(deploy_scale)
                .short(&["rs"]),
            ResourceDef::builtin(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
            )
            .generation()
            .with_status()
            .short(&["hpa"]),
            ResourceDef::builtin("coordination.k8s.io", "v1", "Lease", "leases", true),
            ResourceDef::builtin("events.k8s.io", "v1", "Event", "events", true).short(&["ev"]),
            ResourceDef::custom("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", true)
                .with_status()
                .short(&["so"]),
            ResourceDef::custom("keda.sh", "v1alpha1", "ScaledJob", "scaledjobs", true)
                .with_status()
                .short(&["sj"]),
            ResourceDef::custom(
                "keda.sh",
                "v1alpha1",
                "TriggerAuthentication",
                "triggerauthentications",
                true,
            )
            .with_status()
            .short(&["ta", "triggerauth"]),
            ResourceDef::custom(
                "keda.sh",
                "v1alpha1",
                "ClusterTriggerAuthentication",
                "clustertriggerauthentications",
                false,
            )
            .with_status()
            .short(&["cta", "clustertriggerauth"]),
            ResourceDef::builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            )
            .generation()
            .with_status()
            .short(&["crd", "crds"]),
            ResourceDef {
                review: Some(ReviewKind::Token),
                ..ResourceDef::builtin(
                    "authentication.k8s.io",
                    "v1",
                    "TokenReview",
                    "tokenreviews",
                    false,
                )
            },
            ResourceDef {
                review: Some(ReviewKind::SubjectAccess),
                ..ResourceDef::builtin(
                    "authorization.k8s.io",
                    "v1",
                    "SubjectAccessReview",
                    "subjectaccessreviews",
                    false,
                )
            },
        ] {
            r.insert(def);
        }
        r
    }

    /// Removes a resource.
    pub fn remove(&mut self, key: &ResKey) -> Option<ResourceDef> {
        self.defs.remove(key)
    }

    /// Adds or replaces a resource.
    pub fn insert(&mut self, def: ResourceDef) {
        self.defs.insert(ResKey::of(&def), def);
    }

    /// The resource served at `/apis/{group}/{version}/{plural}` (or `/api/v1/{plural}`).
    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs
            .get(&ResKey {
                group: group.into(),
                plural: plural.into(),
            })
            .filter(|d| d.version == version)
    }

    /// Resolves `apps/v1` + `Deployment` or `deployments`.
    pub fn by_api_version(&self, api_version: &str, kind_or_plural: &str) -> Option<&ResourceDef> {
        let (group, version) = split_api_version(api_version);
        self.defs.values().find(|d| {
            d.group == group
                && d.version == version
                && (d.kind == kind_or_plural || d.plural == kind_or_plural)
        })
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceDef> {
        self.defs.values()
    }

    /// Groups with their versions, in a stable order (core excluded).
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in self.defs.values().filter(|d| !d.group.is_empty()) {
            let versions = out.entry(d.group.clone()).or_default();
            if !versions.contains(&d.version) {
                versions.push(d.version.clone());
            }
        }
        out
    }

    pub fn group_version(&self, group: &str, version: &str) -> Vec<&ResourceDef> {
        self.defs
            .values()
            .filter(|d| d.group == group && d.version == version)
            .collect()
    }
}

impl ResourceDef {
    /// The resource a `CustomResourceDefinition` object declares: its storage version (or the
    /// first served one), scope, short names and subresources.
    pub(crate) fn from_crd(crd: &serde_json::Value) -> Option<Self> {
        let spec = crd.get("spec")?;
        let s = |v: &serde_json::Value, k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let group = s(spec, "group")?;
        let names = spec.get("names")?;
        let kind = s(names, "kind")?;
        let plural = s(names, "plural")?;
        let namespaced = s(spec, "scope").as_deref() != Some("Cluster");
        let versions = spec.get("versions")?.as_array()?;
        let served = |v: &&serde_json::Value| {
            v.get("served").and_then(serde_json::Value::as_bool) != Some(false)
        };
        let version = versions
            .iter()
            .filter(served)
            .find(|v| v.get("storage").and_then(serde_json::Value::as_bool) == Some(true))
            .or_else(|| versions.iter().find(served))?;
        let mut def = Self::custom(&group, &s(version, "name")?, &kind, &plural, namespaced);
        def.short_names = names
            .get("shortNames")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(subs) = version.get("subresources") {
            def.status = subs.get("status").is_some();
            if let Some(scale) = subs.get("scale") {
                def.scale = Some(ScalePaths {
                    spec_replicas: s(scale, "specReplicasPath")
                        .unwrap_or_else(|| ".spec.replicas".into()),
                    status_replicas: s(scale, "statusReplicasPath")
                        .unwrap_or_else(|| ".status.replicas".into()),
                    label_selector: s(scale, "labelSelectorPath"),
                });
            }
        }
        Some(def)
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}
