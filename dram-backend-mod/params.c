// SPDX-License-Identifier: GPL-2.0
/*
 * Module parameters of fastswap_dram.ko. Rust modules in Linux 6.12 cannot
 * declare parameters, so they live here and dram.rs reads and checks them.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

char *fastswap_dram_size = "";
module_param_named(size, fastswap_dram_size, charp, 0444);
MODULE_PARM_DESC(size, "Capacity: bytes with an optional K/M/G/T suffix (default: 20% of RAM). Memory is allocated only as pages are stored.");
