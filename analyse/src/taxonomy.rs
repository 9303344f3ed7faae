//! The taxonomy data file: labels, descriptions and examples.

use crate::AnalyseError;
use serde::Deserialize;
use std::path::Path;

/// One danger category of the taxonomy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// The label name (snake_case), e.g. `fire`.
    pub name: String,
    /// What the category covers, for people.
    pub description: String,
    /// Example posts in English.
    #[serde(default)]
    pub examples_en: Vec<String>,
    /// Example posts in French.
    #[serde(default)]
    pub examples_fr: Vec<String>,
}

impl Category {
    /// All examples, English first.
    pub fn examples(&self) -> impl Iterator<Item = &str> {
        self.examples_en
            .iter()
            .chain(&self.examples_fr)
            .map(String::as_str)
    }
}

/// Example posts that report no danger (ordinary life, figurative speech, sympathy...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Negatives {
    /// In English.
    #[serde(default)]
    pub examples_en: Vec<String>,
    /// In French.
    #[serde(default)]
    pub examples_fr: Vec<String>,
}

impl Negatives {
    /// All examples, English first.
    pub fn examples(&self) -> impl Iterator<Item = &str> {
        self.examples_en
            .iter()
            .chain(&self.examples_fr)
            .map(String::as_str)
    }
}

/// The labels Vigie scores: `danger` plus the categories of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    /// The categories, in file order.
    #[serde(rename = "category")]
    pub categories: Vec<Category>,
    /// Posts that are negative for every label.
    #[serde(default)]
    pub negatives: Negatives,
}

impl Taxonomy {
    /// The overall label, positive when any category is.
    pub const DANGER: &'static str = "danger";

    /// Reads and checks a taxonomy TOML file.
    pub fn load(path: &Path) -> Result<Self, AnalyseError> {
        let err = |message: String| AnalyseError::Taxonomy {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let taxonomy: Taxonomy = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        taxonomy.check().map_err(err)?;
        Ok(taxonomy)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.categories {
            if c.name == Self::DANGER || !seen.insert(c.name.as_str()) {
                return Err(format!("category name `{}` is used twice", c.name));
            }
            if c.examples().next().is_none() {
                return Err(format!("category `{}` has no example", c.name));
            }
        }
        if self.categories.is_empty() {
            return Err("no category".into());
        }
        Ok(())
    }

    /// Every label name: `danger`, then the categories.
    pub fn labels(&self) -> Vec<String> {
        std::iter::once(Self::DANGER.to_string())
            .chain(self.categories.iter().map(|c| c.name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_taxonomy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/taxonomy.toml");
        let t = Taxonomy::load(&path).unwrap();
        assert_eq!(
            t.labels(),
            [
                "danger",
                "armed_violence",
                "explosion",
                "fire",
                "natural_hazard",
                "accident",
                "crowd_unrest",
                "threat"
            ]
        );
        assert!(t.categories.iter().all(|c| !c.examples_fr.is_empty()));
        assert!(t.negatives.examples().count() >= 10);
    }

    #[test]
    fn a_duplicate_or_empty_category_is_refused() {
        let dir = std::env::temp_dir().join(format!("vigie-tax-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            "[[category]]\nname='fire'\ndescription='x'\nexamples_en=['a']\n\
             [[category]]\nname='fire'\ndescription='y'\nexamples_en=['b']\n",
        )
        .unwrap();
        let e = Taxonomy::load(&path).unwrap_err().to_string();
        assert!(e.contains("`fire` is used twice"), "{e}");
        std::fs::write(&path, "[[category]]\nname='fire'\ndescription='x'\n").unwrap();
        let e = Taxonomy::load(&path).unwrap_err().to_string();
        assert!(e.contains("no example"), "{e}");
        std::fs::write(&path, "[[category]]\nname='fire'\ndescriptio='x'\n").unwrap();
        let e = Taxonomy::load(&path).unwrap_err().to_string();
        assert!(e.contains("unknown field `descriptio`"), "{e}");
    }
}
