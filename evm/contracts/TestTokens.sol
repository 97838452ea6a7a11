// SPDX-License-Identifier: MIT
// Test tokens for memebot's loopback EVM chain: a plain ERC-20, a fee-on-transfer token with fixed taxes, one whose
// owner may raise them, and a honeypot whose sells revert. Never deployed anywhere but a local test node.
pragma solidity ^0.8.20;

contract TestToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, uint256 supply) {
        name = name_;
        symbol = symbol_;
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 a = allowance[from][msg.sender];
        require(a >= value, "ERC20: insufficient allowance");
        if (a != type(uint256).max) allowance[from][msg.sender] = a - value;
        _transfer(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "ERC20: transfer amount exceeds balance");
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }

    function _transfer(address from, address to, uint256 value) internal virtual {
        _move(from, to, value);
    }
}

// Takes `buyTaxBps` of what leaves the pair and `sellTaxBps` of what goes into it, paid to the owner. Fixed for ever.
contract FeeToken is TestToken {
    address public owner;
    address public pair;
    uint256 public buyTaxBps;
    uint256 public sellTaxBps;

    constructor(string memory n, string memory s, uint256 supply, uint256 buyBps, uint256 sellBps)
        TestToken(n, s, supply)
    {
        owner = msg.sender;
        buyTaxBps = buyBps;
        sellTaxBps = sellBps;
    }

    function setPair(address p) external {
        require(msg.sender == owner && pair == address(0), "only once, by the owner");
        pair = p;
    }

    function _transfer(address from, address to, uint256 value) internal override {
        uint256 bps = from == pair ? buyTaxBps : (to == pair ? sellTaxBps : 0);
        if (from == owner || to == owner) bps = 0;
        uint256 tax = (value * bps) / 10000;
        if (tax > 0) _move(from, owner, tax);
        _move(from, to, value - tax);
    }
}

// A FeeToken whose owner may change both taxes at any time, up to 100%.
contract TaxToken is FeeToken {
    constructor(string memory n, string memory s, uint256 supply, uint256 buyBps, uint256 sellBps)
        FeeToken(n, s, supply, buyBps, sellBps)
    {}

    function setTaxes(uint256 buyBps, uint256 sellBps) external {
        require(msg.sender == owner && buyBps <= 10000 && sellBps <= 10000, "not allowed");
        buyTaxBps = buyBps;
        sellTaxBps = sellBps;
    }
}

// Anyone can buy; only the owner can send tokens into the pair, so every other holder's sell reverts.
contract HoneypotToken is TestToken {
    address public owner;
    address public pair;

    constructor(string memory n, string memory s, uint256 supply) TestToken(n, s, supply) {
        owner = msg.sender;
    }

    function setPair(address p) external {
        require(msg.sender == owner && pair == address(0), "only once, by the owner");
        pair = p;
    }

    function _transfer(address from, address to, uint256 value) internal override {
        require(to != pair || from == owner, "TRANSFER_FAILED");
        _move(from, to, value);
    }
}
