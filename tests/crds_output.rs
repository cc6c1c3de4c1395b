//! `windlass crds`: the CRDs it prints are the files in `crds/`, in the order the operator
//! renders them (ScaledObject, TriggerAuthentication, ClusterTriggerAuthentication), each a
//! YAML document starting with `---`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;
use serde_json::Value;
use windlass_tests::{Manifests, repo_path, windlass};

/// The files of `crds/`, in the order `windlass crds` prints them.
const FILES: [&str; 3] = [
    "keda.sh_scaledobjects.yaml",
    "keda.sh_triggerauthentications.yaml",
    "keda.sh_clustertriggerauthentications.yaml",
];

fn crds_file(name: &str) -> String {
    let path = repo_path("crds").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn crds_prints_the_crds_directory() {
    let run = windlass(["crds"]);
    run.assert_code(0);
    let expected: String = FILES.iter().map(|name| crds_file(name)).collect();
    assert!(
        run.stdout == expected,
        "`windlass crds` differs from the concatenation of crds/{{{}}} (regenerate crds/ with WINDLASS_REGENERATE_CRDS=1 cargo test -p windlass-operator --lib crds)",
        FILES.join(",")
    );
    assert!(run.stderr.is_empty(), "{}", run.describe());
}

#[test]
fn the_crds_directory_holds_exactly_these_files() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_path("crds"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = FILES.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(on_disk, expected);
}

#[test]
fn crds_are_three_keda_documents_in_order() {
    let run = windlass(["crds"]);
    run.assert_code(0);
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&run.stdout)
        .map(|document| Value::deserialize(document).unwrap())
        .collect();
    let names: Vec<&str> = documents
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "scaledobjects.keda.sh",
            "triggerauthentications.keda.sh",
            "clustertriggerauthentications.keda.sh"
        ]
    );
    for document in &documents {
        assert_eq!(document["kind"], "CustomResourceDefinition");
        assert_eq!(document["spec"]["group"], "keda.sh");
        let versions = document["spec"]["versions"].as_array().unwrap();
        assert!(
            versions
                .iter()
                .any(|v| v["name"] == "v1alpha1" && v["served"] == true),
            "{}",
            document["metadata"]["name"]
        );
    }
    let scopes: Vec<&str> = documents
        .iter()
        .map(|d| d["spec"]["scope"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(scopes, ["Namespaced", "Namespaced", "Cluster"]);
}

#[test]
fn crds_output_dir_writes_the_same_files() {
    let out = Manifests::new();
    let dir = out.path("crds");
    let run = windlass(["crds".as_ref(), "--output-dir".as_ref(), dir.as_os_str()]);
    run.assert_code(0);
    for name in FILES {
        let written = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{name} not written: {e}"));
        assert!(
            written == crds_file(name),
            "{name} differs from crds/{name}"
        );
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), FILES.len());
}
