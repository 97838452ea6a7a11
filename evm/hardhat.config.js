// memebot's loopback EVM node (Hardhat Network). The chain id comes from MEMEBOT_EVM_CHAIN_ID (1, 56, 137, ...);
// blocks are mined on every transaction unless a test turns automine off.
module.exports = {
  networks: {
    hardhat: {
      chainId: Number(process.env.MEMEBOT_EVM_CHAIN_ID || 31337),
      initialBaseFeePerGas: Number(process.env.MEMEBOT_EVM_BASE_FEE || 1000000000),
      accounts: { count: 4 },
    },
  },
};
