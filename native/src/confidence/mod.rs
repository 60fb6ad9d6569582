//! The confidence study's native half: a population of LeNet-5s trained side by side
//! (`population`), the labelled pairs each checkpoint yields (`pairs`), and the meta-networks
//! that learn to predict a classifier's confidence from its activations (`metanet`).

pub mod metanet;
pub mod pairs;
pub mod population;

pub use population::{Population, PopulationOptions};
