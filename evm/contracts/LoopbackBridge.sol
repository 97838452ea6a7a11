// SPDX-License-Identifier: MIT
// memebot's loopback bridge for tests: the source side of a token bridge between two local test nodes. A deposit
// takes the tokens into escrow (transferFrom, so the sender approves this contract first, as with a real bridge's
// spender) and logs where they go; the test relayer (memebot.testing.evm.LocalLifi) pays the recipient on the
// destination node. Never deployed anywhere but a local test node.
pragma solidity ^0.8.20;

interface IERC20Bridged {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

contract LoopbackBridge {
    uint256 public deposits;

    event Deposited(
        uint256 indexed id, address indexed token, address indexed sender, uint256 amount, uint256 toChainId,
        address recipient
    );

    function deposit(address token, uint256 amount, uint256 toChainId, address recipient) external returns (uint256 id) {
        require(amount > 0, "amount");
        require(IERC20Bridged(token).transferFrom(msg.sender, address(this), amount), "transferFrom");
        id = ++deposits;
        emit Deposited(id, token, msg.sender, amount, toChainId, recipient);
    }
}
