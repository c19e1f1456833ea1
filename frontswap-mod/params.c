// SPDX-License-Identifier: GPL-2.0
/*
 * Module parameters of fastswap.ko. Rust modules in Linux 6.12 cannot
 * declare parameters, so they live here and entry.rs reads them.
 */
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

/*
 * Fault injection for tests: the unload sleeps this long after the module
 * has been marked as going and before it leaves frontswap, widening the
 * window in which a store races the unload. 0 (the default) in production.
 */
static unsigned int test_unload_delay_ms;
module_param(test_unload_delay_ms, uint, 0444);
MODULE_PARM_DESC(test_unload_delay_ms, "Testing only: sleep this many ms at unload before unregistering (default 0)");

void fastswap_test_unload_delay(void);
void fastswap_test_unload_delay(void)
{
	if (test_unload_delay_ms) {
		pr_info("fastswap: test: unload waits %u ms with frontswap still registered\n",
			test_unload_delay_ms);
		msleep(test_unload_delay_ms);
	}
}
