// SPDX-License-Identifier: MIT
// An ERC-20 token: the gigagas ERC-20 and AMM workloads (crates/evm/src/gigagas.rs).
// The workloads place the runtime code in the pre-state and fill the storage directly, so the
// layout below is part of their contract: keep it in step with gigagas.rs.
pragma solidity 0.8.30;

contract Token {
    /// slot 0: balanceOf[owner] at keccak256(abi.encode(owner, 0)).
    mapping(address => uint256) public balanceOf;
    /// slot 1: allowance[owner][spender] at keccak256(abi.encode(spender, keccak256(abi.encode(owner, 1)))).
    mapping(address => mapping(address => uint256)) public allowance;
    /// slot 2.
    uint256 public totalSupply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
        totalSupply = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "Token: allowance");
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    function _transfer(address from, address to, uint256 value) internal {
        require(to != address(0), "Token: zero address");
        uint256 balance = balanceOf[from];
        require(balance >= value, "Token: balance");
        unchecked {
            balanceOf[from] = balance - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
