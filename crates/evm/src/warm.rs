//! Loading up front what revm otherwise loads the first time a transaction needs it.

use revm::precompile::kzg_point_evaluation;
use std::fmt;

/// Loads what revm would otherwise load inside the first transaction that needs it, so that
/// transaction's block does not pay for it. Call once at start-up; later calls are cheap.
///
/// Today that is the KZG trusted setup of the point-evaluation precompile (EIP-4844, from
/// Cancun): revm loads it on the first call of the precompile, which took ~2.95 s on the
/// project's machine, inside whichever block first carried a blob proof. It is loaded here by
/// verifying one known-good proof through revm's own precompile, so whichever KZG backend revm
/// was built with is the one loaded.
///
/// # Errors
///
/// [`WarmUpError`] if the known-good proof does not verify: the KZG backend is broken, and
/// blocks with blob proofs would fail their header checks.
pub fn warm_up() -> Result<(), WarmUpError> {
    verify(&known_good_point_evaluation())
}

/// Runs the point-evaluation precompile on `input`, which must be a valid proof.
fn verify(input: &[u8]) -> Result<(), WarmUpError> {
    match kzg_point_evaluation::run(input, kzg_point_evaluation::GAS_COST) {
        Ok(output) if output.bytes[..] == kzg_point_evaluation::RETURN_VALUE[..] => Ok(()),
        Ok(output) => Err(WarmUpError(format!(
            "the point-evaluation precompile returned 0x{} for a valid proof",
            revm::primitives::hex::encode(&output.bytes)
        ))),
        Err(error) => {
            Err(WarmUpError(format!("the point-evaluation precompile rejected a valid proof: {error:?}")))
        }
    }
}

/// The warm-up's check failed (see [`warm_up`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WarmUpError(pub String);

impl fmt::Display for WarmUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EVM warm-up failed: {}", self.0)
    }
}

impl std::error::Error for WarmUpError {}

/// The input of a valid point evaluation: versioned hash, z, y, commitment, proof. The vector
/// is c-kzg-4844's `verify_kzg_proof_case_correct_proof_4_4`.
fn known_good_point_evaluation() -> Vec<u8> {
    use revm::primitives::hex_literal::hex;
    let commitment = hex!(
        "8f59a8d2a1a625a17f3fea0fe5eb8c896db3764f3185481bc22f91b4aaffcca25f26936857bc3a7c2539ea8ec3a952b7"
    );
    let z = hex!("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000000");
    let y = hex!("1522a4a7f34e1ea350ae07c29c96c7e79655aa926122e95fe69fcbd932ca49e9");
    let proof = hex!(
        "a62ad71d14c5719385c0686f1871430475bf3a00f0aa3f7b8dd99a9abc2160744faf0070725e00b60ad9a026a15b1a8c"
    );
    let versioned_hash = kzg_point_evaluation::kzg_to_versioned_hash(&commitment);
    [&versioned_hash[..], &z, &y, &commitment, &proof].concat()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn warm_up_verifies_the_known_good_proof_and_can_be_repeated() {
        assert_eq!(warm_up(), Ok(()));
        assert_eq!(warm_up(), Ok(()));
    }

    #[test]
    fn a_changed_proof_does_not_verify() {
        // The check inside `warm_up` can fail: the same input with y changed is rejected.
        let mut input = known_good_point_evaluation();
        input[64] ^= 1;
        assert!(verify(&input).is_err());
    }
}
