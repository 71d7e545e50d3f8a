/* Everything dpdk-sys binds: DPDK headers plus the shim declarations (csrc/shim.c). */
#ifndef PSHIM6_DPDK_SYS_WRAPPER_H
#define PSHIM6_DPDK_SYS_WRAPPER_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_bus_vdev.h>

/* Non-inline copies of DPDK's static inline fast-path functions: bindgen cannot bind inline
 * functions, and one call per burst (not per packet) is cheap enough. */
uint16_t pshim6_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t pshim6_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *pshim6_pktmbuf_alloc(struct rte_mempool *pool);
void pshim6_pktmbuf_free(struct rte_mbuf *m);
void pshim6_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n);
/* rte_errno is a per-lcore TLS variable behind a macro. */
int pshim6_errno(void);
/* Configures `nb_queues` rx and tx queues on `port`, RSS over the IPv6 addresses (masked by
 * what the device supports) when there is more than one queue. Returns 0 or -errno. */
int pshim6_port_configure(uint16_t port, uint16_t nb_queues);
/* 1 link up, 0 link down, negative -errno. */
int pshim6_link_up(uint16_t port);
/* RTE_PKTMBUF_HEADROOM and RTE_MBUF_DEFAULT_BUF_SIZE as the library was built. */
uint16_t pshim6_pktmbuf_headroom(void);
uint16_t pshim6_mbuf_default_buf_size(void);
/* This thread's lcore id, or -1 for a thread the EAL does not know. */
int pshim6_lcore_id(void);
/* Registers the calling thread as an lcore (rte_thread_register) unless it is one already, so
 * the mempools' per-lcore caches serve it. Returns the lcore id or -errno. */
int pshim6_thread_register(void);
/* Releases the calling thread's lcore id (rte_thread_unregister), if it has one. */
void pshim6_thread_unregister(void);
/* Mbufs held in `lcore`'s cache of `mp` (0 for a pool without caches). */
unsigned int pshim6_mempool_cache_len(const struct rte_mempool *mp, unsigned int lcore);
/* RTE_MAX_LCORE as the library was built. */
unsigned int pshim6_max_lcore(void);
/* Two ring-backed ethdevs named `net_ring_<a>` and `net_ring_<b>` (net_ring's
 * rte_eth_from_rings) wired back to
 * back with `queues` queue pairs: what one sends on queue q the other receives on queue q.
 * Returns 0 with both port ids, or -errno. */
int pshim6_ring_port_pair(const char *a, const char *b, uint16_t queues, unsigned int ring_size,
			  int socket, uint16_t *port_a, uint16_t *port_b);

#endif /* PSHIM6_DPDK_SYS_WRAPPER_H */
