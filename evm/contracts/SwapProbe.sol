// SPDX-License-Identifier: MIT
// memebot's token probe. Never deployed: its runtime code is placed at an unused address with eth_call's state
// override, then called with some native coin. It buys the token through a Uniswap V2 router, sends a little of it to
// a fresh address, sells the rest, and reports what the router promised against what really moved, so buy, transfer
// and sell taxes and reverting sells (honeypots) show without a transaction.
pragma solidity ^0.8.20;

interface IERC20Min {
    function balanceOf(address) external view returns (uint256);
    function approve(address, uint256) external returns (bool);
    function transfer(address, uint256) external returns (bool);
}

interface IRouterMin {
    function WETH() external view returns (address);
    function getAmountsOut(uint256 amountIn, address[] calldata path) external view returns (uint256[] memory);
    function swapExactETHForTokensSupportingFeeOnTransferTokens(
        uint256 amountOutMin, address[] calldata path, address to, uint256 deadline) external payable;
    function swapExactTokensForETHSupportingFeeOnTransferTokens(
        uint256 amountIn, uint256 amountOutMin, address[] calldata path, address to, uint256 deadline) external;
}

contract SwapProbe {
    receive() external payable {}

    // Returns [buyExpected, bought, transferSent, transferArrived, sellExpected, sold, buyGas, sellGas] and a code:
    // 0 ok, 1 buy reverted, 2 transfer reverted, 3 approve reverted, 4 sell reverted.
    function probe(address router, address token) external payable returns (uint256[8] memory r, uint256 code) {
        IRouterMin rt = IRouterMin(router);
        address[] memory path = new address[](2);
        path[0] = rt.WETH();
        path[1] = token;
        IERC20Min t = IERC20Min(token);
        r[0] = rt.getAmountsOut(msg.value, path)[1];
        uint256 b0 = t.balanceOf(address(this));
        uint256 g = gasleft();
        try rt.swapExactETHForTokensSupportingFeeOnTransferTokens{value: msg.value}(0, path, address(this),
            block.timestamp + 60) {} catch { return (r, 1); }
        r[6] = g - gasleft();
        r[1] = t.balanceOf(address(this)) - b0;
        if (r[1] == 0) return (r, 1);
        address dest = address(uint160(uint256(keccak256(abi.encode(address(this), block.number)))));
        r[2] = r[1] / 100;
        if (r[2] > 0) {
            uint256 d0 = t.balanceOf(dest);
            try t.transfer(dest, r[2]) returns (bool ok) { if (!ok) return (r, 2); } catch { return (r, 2); }
            r[3] = t.balanceOf(dest) - d0;
        }
        uint256 left = t.balanceOf(address(this));
        try t.approve(router, left) returns (bool ok) { if (!ok) return (r, 3); } catch { return (r, 3); }
        path[0] = token;
        path[1] = rt.WETH();
        r[4] = rt.getAmountsOut(left, path)[1];
        uint256 e0 = address(this).balance;
        g = gasleft();
        try rt.swapExactTokensForETHSupportingFeeOnTransferTokens(left, 0, path, address(this), block.timestamp + 60)
        {} catch { return (r, 4); }
        r[7] = g - gasleft();
        r[5] = address(this).balance - e0;
        return (r, 0);
    }
}
