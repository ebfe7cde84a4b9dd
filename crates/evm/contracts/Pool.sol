// SPDX-License-Identifier: MIT
// A constant-product AMM pool of two ERC-20 tokens with a 0.3 % fee (Uniswap V2's formula):
// the gigagas AMM workload (crates/evm/src/gigagas.rs), which places the runtime code in the
// pre-state and fills the storage directly, so the layout below is part of its contract.
pragma solidity 0.8.30;

interface IERC20 {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

contract Pool {
    /// slot 0.
    IERC20 public token0;
    /// slot 1.
    IERC20 public token1;
    /// slot 2: reserve0 in the low 128 bits, reserve1 in the high 128 bits.
    uint128 public reserve0;
    uint128 public reserve1;

    event Swap(address indexed sender, bool zeroForOne, uint256 amountIn, uint256 amountOut, address indexed to);

    constructor(IERC20 a, IERC20 b, uint128 r0, uint128 r1) {
        token0 = a;
        token1 = b;
        reserve0 = r0;
        reserve1 = r1;
    }

    /// Sells `amountIn` of token0 (`zeroForOne`) or token1 for the other, pulled from the caller
    /// (who approved the pool) and paid to `to`; reverts below `minOut`.
    function swap(bool zeroForOne, uint256 amountIn, uint256 minOut, address to) external returns (uint256 out) {
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (reserve0, reserve1) : (reserve1, reserve0);
        uint256 inWithFee = amountIn * 997;
        out = (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
        require(out > 0 && out >= minOut, "Pool: slippage");
        (IERC20 tokenIn, IERC20 tokenOut) = zeroForOne ? (token0, token1) : (token1, token0);
        require(tokenIn.transferFrom(msg.sender, address(this), amountIn), "Pool: pull");
        require(tokenOut.transfer(to, out), "Pool: pay");
        if (zeroForOne) {
            reserve0 = uint128(reserveIn + amountIn);
            reserve1 = uint128(reserveOut - out);
        } else {
            reserve1 = uint128(reserveIn + amountIn);
            reserve0 = uint128(reserveOut - out);
        }
        emit Swap(msg.sender, zeroForOne, amountIn, out, to);
    }
}
