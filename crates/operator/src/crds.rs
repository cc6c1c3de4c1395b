//! Rendering of the CustomResourceDefinitions generated from [`crate::crd`].
//!
//! The YAML in the repository's `crds/` directory is produced by [`write_all`] and checked by a
//! test (`crds_directory_is_up_to_date`). After changing a CRD type, regenerate it with
//!
//! ```text
//! WINDLASS_REGENERATE_CRDS=1 cargo test -p windlass-operator --lib crds
//! ```

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::CustomResourceExt;

use crate::crd::{ClusterTriggerAuthentication, ScaledObject, TriggerAuthentication};

/// Command that regenerates the `crds/` directory.
pub const REGENERATE_COMMAND: &str =
    "WINDLASS_REGENERATE_CRDS=1 cargo test -p windlass-operator --lib crds";

/// Failure to render or write the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdsError {
    /// A CRD could not be serialised to YAML.
    #[error("serialising CRD {name} to YAML")]
    Serialize {
        /// CRD name, e.g. `scaledobjects.keda.sh`.
        name: String,
        /// Underlying serialiser error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A CRD file could not be written.
    #[error("writing CRD file {path}")]
    Write {
        /// File that could not be written.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// All CRDs, in the stable order used for output: ScaledObject, TriggerAuthentication,
/// ClusterTriggerAuthentication.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        ScaledObject::crd(),
        TriggerAuthentication::crd(),
        ClusterTriggerAuthentication::crd(),
    ]
}

/// File name of a CRD in `crds/`: `<group>_<plural>.yaml`, as KEDA names them.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document starting with `---`.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, CrdsError> {
    let body = serde_yaml_ng::to_string(crd).map_err(|source| CrdsError::Serialize {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })?;
    Ok(format!("---\n{body}"))
}

/// All CRDs as one multi-document YAML string, in the order of [`all`].
pub fn render_all() -> Result<String, CrdsError> {
    all().iter().map(render).collect()
}

/// Each CRD with its file name and rendered YAML, in the order of [`all`].
pub fn render_files() -> Result<Vec<(String, String)>, CrdsError> {
    all()
        .iter()
        .map(|crd| Ok((file_name(crd), render(crd)?)))
        .collect()
}

/// Writes one file per CRD into `dir` (created if missing); returns the paths written.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, CrdsError> {
    std::fs::create_dir_all(dir).map_err(|source| CrdsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    render_files()?
        .into_iter()
        .map(|(name, yaml)| {
            let path = dir.join(name);
            std::fs::write(&path, yaml).map_err(|source| CrdsError::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `crds/` at the repository root.
    fn crds_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds")
    }

    /// `deploy/01-crds.yaml`: the same CRDs in one file, so `kubectl apply -f deploy/` installs
    /// everything.
    fn deploy_crds() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/01-crds.yaml")
    }

    #[test]
    fn deploy_crds_are_up_to_date() -> Result<(), Box<dyn std::error::Error>> {
        let path = deploy_crds();
        let yaml = render_all()?;
        if std::env::var_os("WINDLASS_REGENERATE_CRDS").is_some() {
            std::fs::write(&path, &yaml)?;
            return Ok(());
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "deploy/01-crds.yaml is out of date. Regenerate it with:\n    {REGENERATE_COMMAND}"
        );
        Ok(())
    }

    #[test]
    fn crds_directory_is_up_to_date() -> Result<(), Box<dyn std::error::Error>> {
        let dir = crds_dir();
        if std::env::var_os("WINDLASS_REGENERATE_CRDS").is_some() {
            write_all(&dir)?;
            return Ok(());
        }
        let mut stale = Vec::new();
        for (name, yaml) in render_files()? {
            let path = dir.join(&name);
            match std::fs::read_to_string(&path) {
                Ok(on_disk) if on_disk == yaml => {}
                Ok(_) => stale.push(format!("{name} differs from the Rust types")),
                Err(e) => stale.push(format!("{name} cannot be read ({e})")),
            }
        }
        assert!(
            stale.is_empty(),
            "crds/ is out of date: {}.\nRegenerate it with:\n    {REGENERATE_COMMAND}",
            stale.join("; ")
        );
        Ok(())
    }
}
