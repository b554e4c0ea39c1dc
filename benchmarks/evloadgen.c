/*
 * evloadgen.c - a closed-loop Modbus/TCP load generator on one thread and epoll.
 *
 * usage: evloadgen [--warmup S] HOST PORT CONNECTIONS SECONDS [REGISTERS]
 *
 * Each connection sends one FC3 request (unit 1, address 0, REGISTERS
 * registers, 10 by default), waits for its whole answer, checks it, and
 * sends the next.  Prints one line of key=value pairs like
 * ../shared/bench/loadgen: rps, mean_us, errors, client_cpu_pct.
 *
 * Why a second instrument: ../shared/bench/loadgen runs a thread per
 * connection, and on a machine of two cores its own cost per request grows
 * with the number of threads (100 threads switch on every answer).  With
 * one thread waiting on every connection at once, the client's cost per
 * request barely depends on how many connections it drives, so that what
 * changes from 10 to 100 connections is the server's part.
 *
 * Only 127.0.0.1 and ::1 are accepted as targets.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 4096
#define MAX_ANSWER 260          /* the longest MBAP frame */

struct connection {
    int fd;
    uint16_t transaction;
    size_t have;                  /* bytes of the answer received so far */
    double sent_at;               /* when the request in flight was sent */
    unsigned char answer[MAX_ANSWER];
};

static int registers = 10;
static size_t answer_size;        /* 7 (MBAP) + 2 + 2 * registers */
static long completed, errors;
static double latency_sum;
static int counting;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int send_request(struct connection *c)
{
    unsigned char frame[12];
    c->transaction++;
    frame[0] = (unsigned char)(c->transaction >> 8);
    frame[1] = (unsigned char)c->transaction;
    frame[2] = 0; frame[3] = 0;           /* protocol */
    frame[4] = 0; frame[5] = 6;           /* length */
    frame[6] = 1;                         /* unit */
    frame[7] = 3;                         /* read holding registers */
    frame[8] = 0; frame[9] = 0;           /* address */
    frame[10] = (unsigned char)(registers >> 8);
    frame[11] = (unsigned char)registers;
    c->have = 0;
    c->sent_at = now();
    /* A 12-byte write into an empty socket buffer is taken whole. */
    return send(c->fd, frame, sizeof frame, MSG_NOSIGNAL) == (ssize_t)sizeof frame ? 0 : -1;
}

/* 1: the expected answer is in; 2: another answer is in; 0: not yet; -1: the connection failed. */
static int receive_answer(struct connection *c)
{
    /* One request is in flight, so reading the expected size cannot take the next frame's bytes;
       once the MBAP header is in, its length says where the frame ends. */
    size_t wanted = c->have < 6 ? answer_size : 6 + (size_t)((c->answer[4] << 8) | c->answer[5]);
    if (wanted > MAX_ANSWER)
        return -1;
    ssize_t got = recv(c->fd, c->answer + c->have, wanted - c->have, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        return -1;
    if (got < 0)
        return 0;
    c->have += (size_t)got;
    if (c->have < 6 || c->have < 6 + (size_t)((c->answer[4] << 8) | c->answer[5]))
        return 0;
    /* An exception answer, another transaction or a short answer counts as an error. */
    if (c->have != answer_size || ((c->answer[0] << 8) | c->answer[1]) != c->transaction ||
        c->answer[7] != 3 || c->answer[8] != 2 * registers)
        return 2;
    return 1;
}

static int open_connection(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *found;
    if (getaddrinfo(host, port, &hints, &found) != 0)
        return -1;
    int fd = socket(found->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    if (fd >= 0) {
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        /* Non-blocking from here: a short read waits for epoll again. */
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
            close(fd);
            fd = -1;
        }
    }
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: evloadgen [--warmup S] HOST PORT CONNECTIONS SECONDS [REGISTERS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double warmup = 1.0;
    int arg = 1;
    if (arg + 1 < argc && strcmp(argv[arg], "--warmup") == 0) {
        warmup = atof(argv[arg + 1]);
        arg += 2;
    }
    if (argc - arg < 4 || argc - arg > 5)
        usage();
    const char *host = argv[arg], *port = argv[arg + 1];
    int count = atoi(argv[arg + 2]);
    double seconds = atof(argv[arg + 3]);
    if (argc - arg == 5)
        registers = atoi(argv[arg + 4]);
    if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0) {
        fprintf(stderr, "evloadgen: only 127.0.0.1 and ::1 are accepted as targets\n");
        return 2;
    }
    if (count < 1 || count > MAX_CONNECTIONS || seconds <= 0 || warmup < 0 || registers < 1 ||
        registers > 125)
        usage();
    answer_size = 9 + 2 * (size_t)registers;

    struct connection *connections = calloc((size_t)count, sizeof *connections);
    int epoll = epoll_create1(0);
    if (connections == NULL || epoll < 0) {
        perror("evloadgen");
        return 1;
    }
    for (int i = 0; i < count; i++) {
        connections[i].fd = open_connection(host, port);
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = &connections[i]};
        if (connections[i].fd < 0 || epoll_ctl(epoll, EPOLL_CTL_ADD, connections[i].fd, &event) != 0) {
            fprintf(stderr, "evloadgen: connection %d to %s port %s failed: %s\n", i, host, port,
                    strerror(errno));
            return 1;
        }
    }
    for (int i = 0; i < count; i++)
        if (send_request(&connections[i]) != 0) {
            perror("evloadgen: send");
            return 1;
        }

    struct epoll_event events[256];
    double start = now(), counted_from = start + warmup, end = counted_from + seconds;
    double cpu_from = 0.0, t = start;
    while (t < end) {
        int ready = epoll_wait(epoll, events, 256, 100);
        if (ready < 0 && errno != EINTR) {
            perror("evloadgen: epoll_wait");
            return 1;
        }
        t = now();
        if (!counting && t >= counted_from) {
            counting = 1;
            cpu_from = cpu_seconds();
            counted_from = t;
        }
        for (int i = 0; i < ready; i++) {
            struct connection *c = events[i].data.ptr;
            int done = receive_answer(c);
            if (done < 0) {
                fprintf(stderr, "evloadgen: a connection closed or failed\n");
                return 1;
            }
            if (done == 0)
                continue;
            if (counting && done == 2) {
                errors++;
            } else if (counting) {
                completed++;
                latency_sum += t - c->sent_at;
            }
            if (send_request(c) != 0) {
                perror("evloadgen: send");
                return 1;
            }
        }
    }
    double wall = t - counted_from, cpu = cpu_seconds() - cpu_from;
    printf("conns=%d secs=%.1f registers=%d ok=%ld err=%ld rps=%.1f mean_us=%.1f client_cpu_pct=%.0f\n",
           count, wall, registers, completed, errors, wall > 0 ? completed / wall : 0.0,
           completed ? 1e6 * latency_sum / completed : 0.0, wall > 0 ? 100.0 * cpu / wall : 0.0);
    return errors ? 1 : 0;
}
