// SPDX-License-Identifier: GPL-2.0
/*
 * Module parameters of fastswap_rdma.ko, named as in the original Fastswap.
 * Rust modules in Linux 6.12 cannot declare parameters, so they live here
 * and rdma.rs reads and checks them.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

int fastswap_rdma_sport;
char *fastswap_rdma_sip;
char *fastswap_rdma_cip;
int fastswap_rdma_nq = -1; /* -1: not given, use every online CPU */

module_param_named(sport, fastswap_rdma_sport, int, 0444);
MODULE_PARM_DESC(sport, "Port farmem-server listens on (required)");
module_param_named(sip, fastswap_rdma_sip, charp, 0444);
MODULE_PARM_DESC(sip, "IPv4 address of the far memory server (required)");
module_param_named(cip, fastswap_rdma_cip, charp, 0444);
MODULE_PARM_DESC(cip, "IPv4 address of this machine's RDMA interface (required)");
module_param_named(nq, fastswap_rdma_nq, int, 0444);
MODULE_PARM_DESC(nq, "CPUs to serve, 3 queue pairs each (default: all online CPUs)");

/*
 * How long a lost connection is retried before the pages held remotely are
 * declared lost, as NVMe over Fabrics' ctrl_loss_tmo (whose default is also
 * 600 s). 0: no reconnect, the first failure loses the far memory.
 */
int fastswap_rdma_reconnect_timeout_s = 600;
module_param_named(reconnect_timeout_s, fastswap_rdma_reconnect_timeout_s, int, 0444);
MODULE_PARM_DESC(reconnect_timeout_s,
		 "Seconds to retry a lost connection before far memory is declared lost (0-3600, default 600; 0: never retry)");
