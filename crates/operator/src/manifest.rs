//! Offline manifest sets: the Kubernetes objects `windlass check` and `windlass plan` read from
//! files instead of an API server.
//!
//! Inputs are files, directories (every `*.yaml`, `*.yml` and `*.json` below them, in sorted
//! order) or `-` for standard input; each may hold several YAML documents, and a `kind: List`
//! is flattened into its items. Objects without a namespace land in `default`, as `kubectl
//! apply` would put them. Documents are kept as JSON values and turned into typed objects on
//! demand, so one object's mistake never hides the others.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec};

use crate::crd::{
    self, ClusterTriggerAuthentication, TriggerAuthentication, TriggerAuthenticationSpec,
};
use crate::resolve::{ObjectLookup, ResolveError};

/// The namespace of objects that do not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where a document came from, for messages people can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file path, or `<stdin>`.
    pub file: String,
    /// 1-based position of the document in its file.
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file, self.document)
    }
}

/// Input that cannot be read at all: `check` and `plan` stop with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid YAML: {message}")]
    Yaml { file: String, message: String },
    #[error(
        "{origin}: not a Kubernetes object: {problem} (every document needs `apiVersion`, `kind` and `metadata.name`)"
    )]
    NotAnObject { origin: Origin, problem: String },
    #[error("no manifests found in {0} (give YAML files, directories of them, or - for stdin)")]
    Empty(String),
}

/// One Kubernetes object as read from a file.
#[derive(Clone, Debug)]
pub struct Document {
    pub origin: Origin,
    pub value: Value,
}

impl Document {
    fn str_at(&self, pointer: &str) -> Option<&str> {
        self.value.pointer(pointer).and_then(Value::as_str)
    }

    pub fn api_version(&self) -> &str {
        self.str_at("/apiVersion").unwrap_or_default()
    }

    /// The API group: `apps` for `apps/v1`, empty for the core group (`v1`).
    pub fn group(&self) -> &str {
        self.api_version()
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.str_at("/kind").unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.str_at("/metadata/name").unwrap_or_default()
    }

    /// `metadata.namespace`, or `default`.
    pub fn namespace(&self) -> &str {
        self.str_at("/metadata/namespace")
            .filter(|ns| !ns.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE)
    }

    /// `Kind namespace/name`, how messages name an object.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind(), self.namespace(), self.name())
    }

    /// The document as a typed object; the error names the field that did not fit.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, FieldError> {
        let mut value = self.value.clone();
        // Offline objects land in `default` unless they say otherwise, like `kubectl apply`.
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            let missing = metadata
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if missing && !is_cluster_scoped(self.kind()) {
                metadata.insert("namespace".into(), Value::from(DEFAULT_NAMESPACE));
            }
        }
        serde_path_to_error::deserialize(value).map_err(|error| FieldError {
            path: error.path().to_string(),
            message: error.into_inner().to_string(),
        })
    }
}

fn is_cluster_scoped(kind: &str) -> bool {
    matches!(kind, "ClusterTriggerAuthentication" | "Namespace")
}

/// A field of an object that does not have the expected shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Dotted path to the field, e.g. `spec.triggers[0].metadata.listLength`.
    pub path: String,
    pub message: String,
}

/// Every object read from the inputs, in input order.
#[derive(Clone, Debug, Default)]
pub struct ManifestSet {
    documents: Vec<Document>,
}

impl ManifestSet {
    /// Reads every input: files, directories, or `-` for standard input.
    pub fn load(inputs: &[PathBuf]) -> Result<Self, LoadError> {
        let mut set = Self::default();
        for input in inputs {
            if input.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|source| LoadError::Io {
                        path: "<stdin>".into(),
                        source,
                    })?;
                set.add_yaml("<stdin>", &text)?;
            } else {
                for file in manifest_files(input)? {
                    let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io {
                        path: file.display().to_string(),
                        source,
                    })?;
                    set.add_yaml(&file.display().to_string(), &text)?;
                }
            }
        }
        if set.documents.is_empty() {
            let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
            return Err(LoadError::Empty(names.join(", ")));
        }
        Ok(set)
    }

    /// Parses one file's text (one or more YAML documents) into the set.
    pub fn add_yaml(&mut self, file: &str, text: &str) -> Result<(), LoadError> {
        for (position, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(document).map_err(|error| LoadError::Yaml {
                file: file.to_owned(),
                message: error.to_string(),
            })?;
            let origin = Origin {
                file: file.to_owned(),
                document: position + 1,
            };
            self.add_value(origin, value)?;
        }
        Ok(())
    }

    fn add_value(&mut self, origin: Origin, value: Value) -> Result<(), LoadError> {
        let not_object = |problem: &str| LoadError::NotAnObject {
            origin: origin.clone(),
            problem: problem.to_owned(),
        };
        match &value {
            // `---` with nothing after it, or a file of comments.
            Value::Null => return Ok(()),
            Value::Object(_) => {}
            _ => return Err(not_object("the document is not a mapping")),
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| not_object("a List without `items`"))?;
            for item in items {
                self.add_value(origin.clone(), item.clone())?;
            }
            return Ok(());
        }
        if kind.is_empty() {
            return Err(not_object("`kind` is missing"));
        }
        if value.get("apiVersion").and_then(Value::as_str).is_none() {
            return Err(not_object("`apiVersion` is missing"));
        }
        let named = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|name| !name.is_empty());
        if !named {
            return Err(not_object("`metadata.name` is missing"));
        }
        self.documents.push(Document { origin, value });
        Ok(())
    }

    /// Every document, in input order.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The documents of one kind in one API group (`keda.sh`, `apps`, or `` for core).
    pub fn of_kind<'s>(
        &'s self,
        group: &'s str,
        kind: &'s str,
    ) -> impl Iterator<Item = &'s Document> {
        self.documents
            .iter()
            .filter(move |doc| doc.kind() == kind && doc.group() == group)
    }

    /// The object of `kind` in `group` named `name` in `namespace` (`None` for cluster-scoped).
    pub fn find<'s>(
        &'s self,
        group: &'s str,
        kind: &'s str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&'s Document> {
        // Like `kubectl apply` of the whole set: a later document of the same name wins.
        self.of_kind(group, kind)
            .filter(|doc| {
                doc.name() == name && namespace.is_none_or(|namespace| doc.namespace() == namespace)
            })
            .last()
    }
}

impl ObjectLookup for ManifestSet {
    fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ResolveError> {
        let Some(doc) = self.find("", "Secret", Some(namespace), name) else {
            return Ok(None);
        };
        let (mut data, _) = secret_data_values(doc);
        let string_data: BTreeMap<String, String> = match doc.value.get("stringData") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(value) => serde_path_to_error::deserialize(value.clone()).map_err(|error| {
                ResolveError::Malformed {
                    object: doc.describe(),
                    message: format!("stringData.{}: {}", error.path(), error.inner()),
                }
            })?,
        };
        // The API server folds stringData into data, stringData winning.
        data.extend(string_data);
        Ok(Some(data))
    }

    fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ResolveError> {
        let Some(doc) = self.find("", "ConfigMap", Some(namespace), name) else {
            return Ok(None);
        };
        let config_map: ConfigMap = doc.typed().map_err(|e| malformed(doc, e))?;
        Ok(Some(config_map.data.unwrap_or_default()))
    }

    fn workload_pod_spec(
        &self,
        namespace: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodSpec>, ResolveError> {
        let group = api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or_default();
        let Some(doc) = self.find(group, kind, Some(namespace), name) else {
            return Ok(None);
        };
        let Some(pod) = doc.value.pointer("/spec/template/spec") else {
            return Ok(Some(PodSpec::default()));
        };
        serde_path_to_error::deserialize(pod.clone())
            .map(Some)
            .map_err(|error| ResolveError::Malformed {
                object: doc.describe(),
                message: format!("spec.template.spec.{}: {}", error.path(), error.inner()),
            })
    }

    fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<TriggerAuthenticationSpec>, ResolveError> {
        let Some(doc) = self.find(crd::GROUP, "TriggerAuthentication", Some(namespace), name)
        else {
            return Ok(None);
        };
        let object: TriggerAuthentication = doc.typed().map_err(|e| malformed(doc, e))?;
        Ok(Some(object.spec))
    }

    fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Option<TriggerAuthenticationSpec>, ResolveError> {
        let Some(doc) = self.find(crd::GROUP, "ClusterTriggerAuthentication", None, name) else {
            return Ok(None);
        };
        let object: ClusterTriggerAuthentication = doc.typed().map_err(|e| malformed(doc, e))?;
        Ok(Some(object.spec))
    }
}

/// A Secret's `data`, base64-decoded. A value that is not base64 (as in several of KEDA's
/// documented examples, which put plain text there) is taken as written, with a warning:
/// `kubectl apply` would reject such a Secret.
fn secret_data_values(doc: &Document) -> (BTreeMap<String, String>, Vec<String>) {
    use base64::Engine;
    let mut values = BTreeMap::new();
    let mut warnings = Vec::new();
    let Some(data) = doc.value.get("data").and_then(Value::as_object) else {
        return (values, warnings);
    };
    for (key, value) in data {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        match decoded {
            Ok(decoded) => {
                values.insert(key.clone(), decoded);
            }
            Err(_) => {
                warnings.push(format!(
                    "{}: data.{key} is not base64, so the API server would reject this Secret; it is read as plain text here (fix: move plain values to stringData)",
                    doc.describe()
                ));
                values.insert(key.clone(), text);
            }
        }
    }
    (values, warnings)
}

impl ManifestSet {
    /// Problems with the set itself that do not make any ScaledObject invalid.
    pub fn warnings(&self) -> Vec<String> {
        self.of_kind("", "Secret")
            .flat_map(|doc| secret_data_values(doc).1)
            .collect()
    }
}

fn malformed(doc: &Document, error: FieldError) -> ResolveError {
    ResolveError::Malformed {
        object: doc.describe(),
        message: error.to_string(),
    }
}

/// The manifest files an input names: itself, or every YAML/JSON file below a directory.
fn manifest_files(input: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io_error = |source| LoadError::Io {
        path: input.display().to_string(),
        source,
    };
    let metadata = std::fs::metadata(input).map_err(io_error)?;
    if !metadata.is_dir() {
        return Ok(vec![input.to_owned()]);
    }
    let mut files = Vec::new();
    let mut pending = vec![input.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io_error)? {
            let path = entry.map_err(io_error)?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| matches!(ext, "yaml" | "yml" | "json"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_DOCS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 3
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Secret
    metadata: {name: creds, namespace: jobs}
    stringData: {password: hunter2}
---
"#;

    #[test]
    fn reads_multi_document_yaml_and_flattens_lists() {
        let mut set = ManifestSet::default();
        set.add_yaml("inline.yaml", TWO_DOCS).unwrap();
        let kinds: Vec<String> = set.documents().iter().map(Document::describe).collect();
        assert_eq!(kinds, ["Deployment default/worker", "Secret jobs/creds"]);
        assert!(
            set.find("apps", "Deployment", Some("default"), "worker")
                .is_some()
        );
        assert!(set.find("", "Secret", Some("default"), "creds").is_none());
        assert_eq!(set.documents()[1].origin.document, 2);
    }

    #[test]
    fn malformed_yaml_names_the_file() {
        let mut set = ManifestSet::default();
        let error = set.add_yaml("bad.yaml", "kind: [unclosed").unwrap_err();
        assert!(
            error.to_string().starts_with("bad.yaml: not valid YAML"),
            "{error}"
        );
    }

    #[test]
    fn documents_without_kind_or_name_are_rejected_clearly() {
        let mut set = ManifestSet::default();
        let error = set
            .add_yaml("x.yaml", "apiVersion: v1\nmetadata: {name: a}\n")
            .unwrap_err();
        assert!(error.to_string().contains("`kind` is missing"), "{error}");
        let error = set
            .add_yaml("y.yaml", "apiVersion: v1\nkind: Secret\n")
            .unwrap_err();
        assert!(
            error.to_string().contains("`metadata.name` is missing"),
            "{error}"
        );
    }

    #[test]
    fn typed_errors_name_the_field() {
        #[derive(Debug, Deserialize)]
        struct Thing {
            #[allow(dead_code)]
            spec: Spec,
        }
        #[derive(Debug, Deserialize)]
        struct Spec {
            #[allow(dead_code)]
            replicas: i32,
        }
        let mut set = ManifestSet::default();
        set.add_yaml(
            "t.yaml",
            "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {replicas: many}\n",
        )
        .unwrap();
        let error = set.documents()[0].typed::<Thing>().unwrap_err();
        assert_eq!(error.path, "spec.replicas");
    }

    #[test]
    fn directories_are_read_in_sorted_order() {
        let dir = std::env::temp_dir().join(format!("windlass-manifest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        std::fs::write(
            dir.join("b.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("nested/a.yml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not yaml").unwrap();
        let set = ManifestSet::load(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<&str> = set.documents().iter().map(Document::name).collect();
        assert_eq!(names, ["b", "a"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
