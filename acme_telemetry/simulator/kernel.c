/* The simulator's hot loop: every live session's player state machine, one event at a
 * time, and the JSON rendering of those events, merged in (timestamp, session uid) order.
 *
 * Python owns everything else: arrivals (engine.py), the population (population.py),
 * each session's static JSON template (template.py: derived from schema.FIELDS, JSON-escaped
 * there, split at its N_SLOTS per-event slots) and its model inputs (model.py). This file
 * is loaded with ctypes (no Python ABI; binding.py) and built by kernel.py with the pinned
 * zig cc for any of its targets (x86_64/aarch64 Linux, x86_64/aarch64 macOS): plain C11,
 * nothing GNU- or BSD-only. See engine.py for the model and why it is deterministic and
 * window-stable.
 *
 * Determinism: every draw comes from a session's own splitmix64 streams, in event order;
 * no draw depends on where a chunk or a window cuts a session. Built without fast-math
 * and without FMA contraction, so the arithmetic is plain IEEE double.
 *
 * Layout checks: binding.py compares EVENT_DTYPE with k_event_field() (name, offset, size
 * and kind of every event_t field) and the template's slots with k_slot_field() at load,
 * so a field added on one side only fails loudly, naming the field.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))
#define NEVER INT64_MAX
#define MAX_RUNGS 16
#define N_SLOTS 23
#define PAD 16 /* slack after templates and strings: put() copies in 16-byte steps */

/* Hazards while playing, per millisecond; the network's share comes per session. */
#define PER_MS (1.0 / 60000.0)
#define PAUSE_PER_MS (1.0 / 900000.0)
#define SEEK_PER_MS (1.0 / 1200000.0)
#define ERROR_PER_MS (1.0 / 2400000.0) /* non-fatal */
#define FATAL_PER_MS (1.0 / 14400000.0)
#define ABR_HEADROOM 0.7   /* ABR picks the highest rung <= 70% of measured bandwidth */
#define ABR_UP_MARGIN 1.25 /* hysteresis: switch up only with 25% to spare ... */
#define ABR_DOWN_MARGIN 0.9 /* ... and down only 10% below the rung's need */

enum { E_START, E_PAUSE, E_RESUME, E_STOP, E_COMPLETE, E_FIRST_FRAME, E_HEARTBEAT, E_REBUF_START, E_REBUF_END,
       E_BITRATE, E_SEEK, E_ERROR, N_EVENT_TYPES };
enum { S_STARTING, S_PLAYING, S_PAUSED, S_REBUF, S_ENDED, S_QUIT, S_FAILED, N_STATES };
/* error codes: 3 video start failure, 3 non-fatal, 3 fatal (string table order) */
enum { C_VSF = 0, C_NONFATAL = 3, C_FATAL = 6, N_CODES = 9 };

/* ------------------------------------------------------------------ global tables */
static double g_normal[8192]; /* standard normal quantiles at (i + 0.5) / 8192 */
static int g_n_normal;
static double g_ladder[MAX_RUNGS]; /* kbps, ascending */
static int g_n_rungs;
/* strings: event types, player states, quality labels (per rung), error codes (JSON) */
static const char *g_str[N_EVENT_TYPES + N_STATES + MAX_RUNGS + N_CODES];
static int g_len[N_EVENT_TYPES + N_STATES + MAX_RUNGS + N_CODES];
static char *g_blob;
#define STR_ET 0
#define STR_PS (N_EVENT_TYPES)
#define STR_Q (N_EVENT_TYPES + N_STATES)
#define STR_CODE (N_EVENT_TYPES + N_STATES + MAX_RUNGS)

/* ------------------------------------------------------------------ random streams */
static inline uint64_t next64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline double unif(uint64_t *s) { return (double)(next64(s) >> 11) * 0x1.0p-53; }
/* A standard normal draw: the quantile table, linearly interpolated. */
static inline double normal(uint64_t *s) {
    double x = unif(s) * g_n_normal - 0.5;
    if (x <= 0) return g_normal[0];
    int i = (int)x;
    if (i >= g_n_normal - 1) return g_normal[g_n_normal - 1];
    double f = x - i;
    return g_normal[i] + f * (g_normal[i + 1] - g_normal[i]);
}

/* ------------------------------------------------------------------ sessions */
typedef struct {
    int64_t uid, start, deadline, t, te, next_hb, pending_switch, cand, pause_end, rebuf_end, rebuf_start_t,
        outcome_t;
    int64_t watch_left, dur_ms, pos_ms, played, stall;
    int64_t played_d, stall_d;
    double median, sigma, x, bw, rate, base_rate, rebuf_c, bw_floor;
    double rung_lo[MAX_RUNGS], rung_hi[MAX_RUNGS];
    uint64_t rng, path_rng;
    int32_t hb_ms, seq, h, buf_events, errors, state, started, rung, pending_rung, prev_rung, top, etype;
    int32_t outcome, quit_at_end, dur_s, startup, vsf;
    /* an incident on this session's slice: [inc_from, inc_to) (NEVER, NEVER: none), the
     * extra fatal-error hazard per ms, the rebuffer hazard's and the stall length's factors */
    int64_t inc_from, inc_to;
    double inc_fatal, inc_rebuf, inc_stall;
    int32_t inc_on; /* the hazards in force were drawn during the incident */
    int32_t startup_out, rebuf_out, code, fatal; /* one-shot fields of the current event (-1: null) */
    int32_t alive; /* 1 live, 0 ended (its events may still be rendered), -1 slot free */
    char *tpl;                /* static template: N_SLOTS + 1 segments */
    int32_t seg[N_SLOTS + 2]; /* segment k is tpl[seg[k]:seg[k+1]] */
} sess_t;

/* One emitted event: what rendering and the ground truth need. */
typedef struct {
    int64_t ts, uid, stall, played, pos_ms, played_d, stall_d;
    double bw;
    int32_t slot, etype, state, seq, rung, prev_rung, buf_events, errors;
    int32_t startup_out, rebuf_out, code, fatal, started, dur_s, startup, vsf;
} event_t;

/* event_t field by field, for the layout check (kind 'i' integer, 'f' floating point) */
typedef struct {
    const char *name;
    int32_t offset, size, kind;
} field_t;
#define EV_FIELD(f)                                                                       \
    {#f, (int32_t)offsetof(event_t, f), (int32_t)sizeof(((event_t *)0)->f),              \
     _Generic(((event_t *)0)->f, double: 'f', float: 'f', default: 'i')}
static const field_t EVENT_FIELDS[] = {
    EV_FIELD(ts), EV_FIELD(uid), EV_FIELD(stall), EV_FIELD(played), EV_FIELD(pos_ms), EV_FIELD(played_d),
    EV_FIELD(stall_d), EV_FIELD(bw), EV_FIELD(slot), EV_FIELD(etype), EV_FIELD(state), EV_FIELD(seq),
    EV_FIELD(rung), EV_FIELD(prev_rung), EV_FIELD(buf_events), EV_FIELD(errors), EV_FIELD(startup_out),
    EV_FIELD(rebuf_out), EV_FIELD(code), EV_FIELD(fatal), EV_FIELD(started), EV_FIELD(dur_s),
    EV_FIELD(startup), EV_FIELD(vsf),
};
#undef EV_FIELD
#define N_EVENT_FIELDS ((int)(sizeof EVENT_FIELDS / sizeof EVENT_FIELDS[0]))

/* (ts, uid) sort keys of one event, order-preserving as unsigned, and its index */
typedef struct {
    uint64_t key[2]; /* [0] uid (less significant), [1] ts */
    int64_t idx;
} sort_item_t;

typedef struct {
    sess_t *s;
    int32_t n, cap;
    int32_t *free_slots;
    int32_t n_free;
    event_t *ev;
    int64_t n_ev, cap_ev;
    int64_t *order; /* sorted event indexes */
    int32_t *slots; /* session slot of each sorted event (what the records path needs) */
    int64_t cap_order, cap_slots, cap_offsets;
    sort_item_t *sort_buf; /* 2 x n_ev items: the radix sort's two buffers */
    int64_t cap_sort;
    char *out;
    int64_t out_len, out_cap;
    int64_t *offsets; /* line k is out[offsets[k]:offsets[k+1]], newline included */
    int64_t ended, ended_life, ended_events; /* totals over ended sessions (calibration) */
} sim_t;

static void path_step(sess_t *s) {
    s->h += 1;
    s->x = 0.9 * s->x + s->sigma * normal(&s->path_rng);
    s->bw = s->median * exp(s->x);
}

static int rung_for(const sess_t *s, double mbps, double margin) {
    /* highest rung whose kbps <= headroom * bandwidth / margin, at least 0 */
    double budget = ABR_HEADROOM * 1000.0 * mbps / margin;
    int r = 0;
    for (int i = 0; i <= s->top; i++)
        if (g_ladder[i] <= budget) r = i;
    return r;
}

/* ------------------------------------------------------------------ the state machine */
/* Decides the session's next event (te, etype) from its state after the previous one,
 * and applies the event's effects; counters then hold the values the event reports. */
static void decide(sess_t *s) {
    uint64_t *r = &s->rng;
    int64_t t = s->t, te;
    int et;
    s->played_d = s->stall_d = 0;
    if (s->state == S_PLAYING) {
        if (s->next_hb <= t) s->next_hb = t + 1; /* a lifecycle event took the heartbeat's ms */
        int in_inc = t >= s->inc_from && t < s->inc_to;
        if (in_inc != s->inc_on) s->inc_on = in_inc, s->cand = 0; /* an incident began or ended: re-draw */
        if (s->cand <= t) { /* hazards are set from the bandwidth at each lifecycle event */
            double bw = s->bw > s->bw_floor ? s->bw : s->bw_floor;
            if (s->inc_on) s->rate = s->base_rate + s->inc_fatal + (s->rebuf_c + 2.0 / bw * PER_MS) * s->inc_rebuf;
            else s->rate = s->base_rate + s->rebuf_c + 2.0 / bw * PER_MS;
            s->cand = t + 1 + (int64_t)(-log(1.0 - unif(r)) / s->rate);
        }
        /* the next non-heartbeat event: a hazard, the ABR switch, intended watch time
         * reached, end of title, or the deadline (ties in this order) */
        te = s->cand, et = -1;
        if (s->pending_switch < te) te = s->pending_switch, et = E_BITRATE;
        if (t + s->watch_left < te) te = t + s->watch_left, et = E_STOP;
        int64_t tt = t + s->dur_ms - s->pos_ms;
        if (tt < te) te = tt, et = E_COMPLETE;
        if (s->deadline < te) te = s->deadline, et = E_STOP;
        if (te <= t) te = t + 1;
        if (s->next_hb < te) { /* a heartbeat first; ABR looks at each one's bandwidth */
            te = s->next_hb;
            path_step(s);
            if (s->pending_switch == NEVER) {
                double lo = s->rung_lo[s->rung] * ABR_DOWN_MARGIN, hi = s->rung_hi[s->rung];
                int want = s->rung;
                if (s->bw < lo && s->rung) want = rung_for(s, s->bw, 1.0);
                else if (s->bw >= hi) want = rung_for(s, s->bw, ABR_UP_MARGIN);
                if (want != s->rung) {
                    s->pending_rung = want;
                    s->pending_switch = te + 50 + (int64_t)(unif(r) * 900);
                }
            }
            int64_t d = te - t;
            s->pos_ms += d, s->played += d, s->watch_left -= d, s->played_d = d;
            s->next_hb = te + s->hb_ms;
            s->te = te, s->etype = E_HEARTBEAT;
            return;
        }
        int64_t d = et == E_COMPLETE ? s->dur_ms - s->pos_ms : te - t;
        s->pos_ms += d, s->played += d, s->watch_left -= d, s->played_d = d;
        if (et == -1) { /* which hazard fired */
            double x = unif(r) * s->rate;
            if (x < PAUSE_PER_MS) {
                et = E_PAUSE, s->state = S_PAUSED;
                s->pause_end = te + 1000 + (int64_t)(45000.0 * exp(normal(r)));
                s->quit_at_end = unif(r) < 0.15;
                s->pending_switch = NEVER;
            } else if (x < PAUSE_PER_MS + SEEK_PER_MS) {
                et = E_SEEK;
                if (unif(r) < 0.6) {
                    int64_t to = s->pos_ms + 10000 + (int64_t)(unif(r) * 590000);
                    int64_t cap = s->dur_ms - 5000 > s->pos_ms ? s->dur_ms - 5000 : s->pos_ms;
                    s->pos_ms = to < cap ? to : cap;
                } else {
                    int64_t to = s->pos_ms - 5000 - (int64_t)(unif(r) * 295000);
                    s->pos_ms = to > 0 ? to : 0;
                }
            } else if (x < PAUSE_PER_MS + SEEK_PER_MS + ERROR_PER_MS) {
                et = E_ERROR;
                s->errors += 1;
                s->code = C_NONFATAL + (int)(unif(r) * 3);
            } else if (x < (s->inc_on ? s->base_rate + s->inc_fatal : s->base_rate)) {
                et = E_ERROR, s->state = S_FAILED;
                s->errors += 1;
                s->code = C_FATAL + (int)(unif(r) * 3);
                s->fatal = 1;
            } else { /* rebuffering: longer stalls on slower connections */
                et = E_REBUF_START, s->state = S_REBUF;
                s->buf_events += 1;
                s->rebuf_start_t = te;
                int64_t length = (int64_t)((600.0 + 20000.0 / s->bw) * exp(0.8 * normal(r))) + 1;
                if (s->inc_on) length = (int64_t)((double)length * s->inc_stall) + 1;
                s->quit_at_end = length > 12000 && unif(r) < 0.5;
                s->rebuf_end = te + (s->quit_at_end ? 12000 : length);
                s->pending_switch = NEVER;
            }
        }
        s->cand = 0; /* a lifecycle event: hazards are re-drawn at the new bandwidth */
        if (et == E_STOP) s->state = S_QUIT;
        else if (et == E_COMPLETE) s->state = S_ENDED;
        else if (et == E_BITRATE) s->rung = s->pending_rung, s->pending_switch = NEVER;
        s->te = te, s->etype = et;
        return;
    }
    if (s->state == S_PAUSED) { /* heartbeats go on; position and watch time stand still */
        if (s->next_hb <= t) s->next_hb = t + 1;
        int64_t stop_t = s->pause_end < s->deadline ? s->pause_end : s->deadline;
        if (s->next_hb < stop_t) {
            te = s->next_hb;
            path_step(s);
            s->next_hb = te + s->hb_ms;
            s->te = te, s->etype = E_HEARTBEAT;
            return;
        }
        te = stop_t > t ? stop_t : t + 1;
        if (s->pause_end <= s->deadline && !s->quit_at_end) et = E_RESUME, s->state = S_PLAYING;
        else et = E_STOP, s->state = S_QUIT;
        s->te = te, s->etype = et;
        return;
    }
    te = s->next_hb, et = E_HEARTBEAT;
    if (s->state == S_STARTING) {
        if (s->outcome_t < te) {
            te = s->outcome_t, et = s->outcome;
            if (et == E_FIRST_FRAME) {
                s->state = S_PLAYING, s->started = 1, s->startup_out = s->startup;
            } else if (et == E_STOP) {
                s->state = S_QUIT; /* exit before video start */
            } else { /* video start failure */
                s->state = S_FAILED, s->fatal = 1, s->errors += 1;
                s->code = C_VSF + (int)(unif(r) * 3);
            }
        }
        if (te <= t) te = t + 1;
    } else { /* rebuffering */
        if (s->rebuf_end < te) {
            te = s->rebuf_end;
            if (s->quit_at_end) et = E_STOP, s->state = S_QUIT;
            else et = E_REBUF_END, s->state = S_PLAYING;
        }
        if (s->deadline < te) te = s->deadline, et = E_STOP, s->state = S_QUIT;
        if (te <= t) te = t + 1;
        s->stall += te - t;
        s->stall_d = te - t;
        if (et == E_REBUF_END) s->rebuf_out = (int32_t)(te - s->rebuf_start_t);
    }
    if (et == E_HEARTBEAT) { /* heartbeats outside playing: the bandwidth path moves on */
        s->next_hb += s->hb_ms;
        if (s->next_hb <= te) s->next_hb = te + s->hb_ms;
        path_step(s);
    }
    s->te = te, s->etype = et;
}

/* After an event is out: the next one starts from it. */
static void settle(sess_t *s) {
    s->t = s->te;
    s->seq += 1;
    s->prev_rung = s->rung;
    s->startup_out = s->rebuf_out = s->code = -1;
    s->fatal = 0;
}

/* ------------------------------------------------------------------ API */
API int k_init(const double *normal_q, int n_normal, const double *ladder_kbps, int n_rungs, const char *blob,
               const int32_t *offsets, int n_strings) {
    if (n_normal < 2 || n_normal > 8192 || n_rungs < 1 || n_rungs > MAX_RUNGS ||
        n_strings != N_EVENT_TYPES + N_STATES + n_rungs + N_CODES)
        return -1;
    memcpy(g_normal, normal_q, sizeof(double) * n_normal);
    g_n_normal = n_normal;
    memcpy(g_ladder, ladder_kbps, sizeof(double) * n_rungs);
    g_n_rungs = n_rungs;
    free(g_blob);
    g_blob = calloc(1, offsets[n_strings] + PAD);
    if (!g_blob) return -2;
    memcpy(g_blob, blob, offsets[n_strings]);
    for (int i = 0; i < n_strings; i++) {
        int k = i < STR_Q + n_rungs ? i : STR_CODE + (i - STR_Q - n_rungs);
        g_str[k] = g_blob + offsets[i];
        g_len[k] = offsets[i + 1] - offsets[i];
    }
    return 0;
}

API sim_t *k_new(void) { return calloc(1, sizeof(sim_t)); }

API void k_free(sim_t *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->s[i].tpl);
    free(m->s), free(m->free_slots), free(m->ev), free(m->order), free(m->slots), free(m->out), free(m->offsets);
    free(m->sort_buf);
    free(m);
}

/* iparams: uid, start, deadline, watch_ms, hb_ms, dur_s, pos0_s, uhd, rng seed, path seed,
 *          incident from, incident to (NEVER, NEVER: none)
 * dparams: median Mbps, log-sd per heartbeat, startup latency ms, extra rebuffers per
 *          minute, fatal-error multiplier, device startup ms, video start failure prob,
 *          incident: extra fatal hazard per ms, rebuffer hazard factor, stall length factor.
 * tpl/seg: the static template and its N_SLOTS + 2 segment offsets. Returns the slot. */
API int32_t k_add(sim_t *m, const int64_t *ip, const double *dp, const char *tpl, const int32_t *seg) {
    int32_t slot;
    if (m->n_free) {
        slot = m->free_slots[--m->n_free];
    } else {
        if (m->n == m->cap) {
            int32_t cap = m->cap ? 2 * m->cap : 256;
            sess_t *s = realloc(m->s, sizeof(sess_t) * cap);
            int32_t *f = realloc(m->free_slots, sizeof(int32_t) * cap);
            if (!s || !f) return -1;
            m->s = s, m->free_slots = f, m->cap = cap;
        }
        slot = m->n++;
        m->s[slot].tpl = NULL;
    }
    sess_t *s = &m->s[slot];
    char *old = s->tpl;
    memset(s, 0, sizeof *s);
    s->tpl = realloc(old, seg[N_SLOTS + 1] + PAD);
    if (!s->tpl) return -1;
    memcpy(s->tpl, tpl, seg[N_SLOTS + 1]);
    memset(s->tpl + seg[N_SLOTS + 1], 0, PAD);
    memcpy(s->seg, seg, sizeof(s->seg));

    s->uid = ip[0], s->start = ip[1], s->deadline = ip[2], s->watch_left = ip[3], s->hb_ms = (int32_t)ip[4];
    s->dur_s = (int32_t)ip[5], s->dur_ms = ip[5] * 1000, s->pos_ms = ip[6] * 1000;
    s->top = ip[7] ? g_n_rungs - 1 : g_n_rungs - 2; /* the top (4K) rung needs a capable device */
    s->rng = (uint64_t)ip[8], s->path_rng = (uint64_t)ip[9];
    double latency = dp[2], extra_rebuf = dp[3], fatal_mult = dp[4], device_ms = dp[5], vsf_p = dp[6];
    s->inc_from = ip[10], s->inc_to = ip[11];
    s->inc_fatal = dp[7], s->inc_rebuf = dp[8], s->inc_stall = dp[9];
    s->median = dp[0], s->sigma = dp[1];
    s->base_rate = PAUSE_PER_MS + SEEK_PER_MS + ERROR_PER_MS + FATAL_PER_MS * fatal_mult;
    s->rebuf_c = (0.02 + extra_rebuf) * PER_MS;
    /* rebuffer hazard grows as bandwidth falls, floored three stationary sds below the median */
    s->bw_floor = s->median * exp(-3 * s->sigma / sqrt(1 - 0.81));
    for (int i = 0; i <= s->top; i++) s->rung_lo[i] = g_ladder[i] / (ABR_HEADROOM * 1000.0);
    for (int i = 0; i < s->top; i++) s->rung_hi[i] = s->rung_lo[i + 1] * ABR_UP_MARGIN;
    s->rung_hi[s->top] = INFINITY;
    s->alive = 1;
    s->pending_switch = NEVER;
    s->startup_out = s->rebuf_out = s->code = -1;

    /* bandwidth: log(bw / median) is a mean-reverting random walk, one step per heartbeat */
    s->x = 0.4 * normal(&s->path_rng);
    s->bw = s->median * exp(s->x);
    s->rung = s->prev_rung = s->pending_rung = rung_for(s, s->bw, 1.0);

    /* startup outcome: first frame, exit before video start, or video start failure */
    uint64_t *r = &s->rng;
    double st = (device_ms + 4000.0 / pow(s->bw, 0.7) + latency) * exp(0.35 * normal(r));
    int64_t startup = (int64_t)st;
    s->startup = (int32_t)(startup < 150 ? 150 : startup > 60000 ? 60000 : startup);
    int64_t patience = (int64_t)(9000.0 * exp(0.9 * normal(r)));
    if (patience > 60000) patience = 60000;
    s->vsf = unif(r) < vsf_p;
    int64_t fail_after = (int64_t)(200 + unif(r) * (s->startup < patience ? s->startup : patience));
    if (s->vsf) { /* a failing start errors out, unless the viewer gives up first */
        if (fail_after < patience) s->outcome = E_ERROR, s->outcome_t = s->start + fail_after;
        else s->outcome = E_STOP, s->outcome_t = s->start + patience;
    } else if (patience < s->startup) {
        s->outcome = E_STOP, s->outcome_t = s->start + patience;
    } else {
        s->outcome = E_FIRST_FRAME, s->outcome_t = s->start + s->startup;
    }
    s->state = S_STARTING;
    s->te = s->t = s->start, s->etype = E_START;
    s->next_hb = s->start + s->hb_ms;
    return slot;
}

/* ---- rendering */
/* Copies n bytes in 16-byte steps: may read up to 15 bytes past s and write up to 15
 * past p + n, which is why templates and strings carry PAD bytes and the output slack. */
static inline char *put(char *p, const char *s, int n) {
    for (int i = 0; i < n; i += 16) memcpy(p + i, s + i, 16);
    return p + n;
}
static inline char *put_u(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10), v /= 10;
    while (v);
    while (n) *p++ = tmp[--n];
    return p;
}
static inline char *put_i(char *p, int64_t v) {
    if (v < 0) *p++ = '-', v = -v;
    return put_u(p, (uint64_t)v);
}
static inline char *put_fixed(char *p, int64_t v, int64_t scale, int digits) { /* v / scale, `digits` decimals */
    if (v < 0) *p++ = '-', v = -v;
    p = put_u(p, (uint64_t)(v / scale));
    *p++ = '.';
    int64_t f = v % scale;
    for (int i = digits - 1; i >= 0; i--) p[i] = (char)('0' + f % 10), f /= 10;
    return p + digits;
}
static inline char *put_hex6(char *p, uint64_t v) {
    static const char hx[] = "0123456789abcdef";
    char tmp[20];
    int n = 0;
    do tmp[n++] = hx[v & 15], v >>= 4;
    while (v);
    while (n < 6) tmp[n++] = '0';
    while (n) *p++ = tmp[--n];
    return p;
}
static inline void put2(char *p, int v) { p[0] = (char)('0' + v / 10), p[1] = (char)('0' + v % 10); }
/* 'YYYY-MM-DDTHH:MM:SS' of an epoch second (proleptic Gregorian, years 0..9999). */
static void iso_second(char *p, int64_t sec) {
    int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    int64_t rem = sec - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, mo = mp < 10 ? mp + 3 : mp - 9;
    y += mo <= 2;
    put2(p, (int)(y / 100)), put2(p + 2, (int)(y % 100));
    p[4] = '-', put2(p + 5, (int)mo), p[7] = '-', put2(p + 8, (int)d), p[10] = 'T';
    put2(p + 11, (int)(rem / 3600)), p[13] = ':', put2(p + 14, (int)(rem / 60 % 60)), p[16] = ':';
    put2(p + 17, (int)(rem % 60));
}

static int grow(void **p, int64_t *cap, int64_t need, size_t item) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * item);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

/* The template's per-event slots, in the order render() fills them (one entry per SEG(i)
 * below): the schema field each slot belongs to. template.py's slots must match. */
static const char *const SLOT_FIELDS[N_SLOTS] = {
    "event_id", "event_type", "event_timestamp", "event_timestamp", "quality", "bandwidth_mbps",
    "buffering_events", "buffering_duration_seconds", "error_count", "watch_duration_seconds", "position_seconds",
    "completion_percentage", "seq", "bitrate_kbps", "startup_time_ms", "rebuffer_duration_ms", "error_code",
    "fatal", "video_started", "player_state", "played_ms", "stalled_ms", "played_bitrate_kbps",
};

/* How many events ahead render() prefetches each level: the event, then its session's
 * template pointer and segments, then the template itself (measured at 20,000 live
 * sessions: these cut the kernel's time per event by about half; the output is the same). */
#define PF_EVENT 12
#define PF_SESSION 8
#define PF_TEMPLATE 4
static inline void prefetch_range(const void *p, size_t n) {
    const char *c = (const char *)p;
    for (size_t i = 0; i < n; i += 64) __builtin_prefetch(c + i);
    __builtin_prefetch(c + n - 1);
}

static int render(sim_t *m) {
    static const char NUL[PAD] = "null", TRUE_[PAD] = "true", FALSE_[PAD] = "false";
    m->out_len = 0;
    if (grow((void **)&m->offsets, &m->cap_offsets, m->n_ev + 1, sizeof(int64_t))) return -1;
    int64_t last_sec = INT64_MIN;
    char secbuf[32] = {0};
    const int64_t n = m->n_ev;
    for (int64_t k = 0; k < n; k++) {
        /* The events go out in time order, so their event_t, session and template are read
         * in random order: with thousands of live sessions (tens of MB) every one missed
         * the caches, and waiting on memory was most of the kernel's time. Each is fetched
         * a few events ahead (PF_* below), level by level, as the previous one arrives. */
        if (k + PF_EVENT < n) prefetch_range(&m->ev[m->order[k + PF_EVENT]], sizeof(event_t));
        if (k + PF_SESSION < n) {
            const sess_t *f = &m->s[m->ev[m->order[k + PF_SESSION]].slot];
            prefetch_range(&f->tpl, sizeof f->tpl + sizeof f->seg);
        }
        if (k + PF_TEMPLATE < n) {
            const sess_t *f = &m->s[m->ev[m->order[k + PF_TEMPLATE]].slot];
            prefetch_range(f->tpl, (size_t)f->seg[N_SLOTS + 1]);
        }
        const event_t *e = &m->ev[m->order[k]];
        const sess_t *s = &m->s[e->slot];
        const char *tp = s->tpl;
        const int32_t *sg = s->seg;
        if (grow((void **)&m->out, &m->out_cap, m->out_len + sg[N_SLOTS + 1] + 1024, 1)) return -1;
        m->offsets[k] = m->out_len;
        char *p = m->out + m->out_len;
        int64_t sec = e->ts >= 0 ? e->ts / 1000 : -((-e->ts + 999) / 1000);
        if (sec != last_sec) iso_second(secbuf, sec), last_sec = sec;
        int64_t pos_s = e->pos_ms / 1000;
#define SEG(i) p = put(p, tp + sg[i], sg[(i) + 1] - sg[i])
        SEG(0), p = put_hex6(p, (uint64_t)e->seq);
        SEG(1), p = put(p, g_str[STR_ET + e->etype], g_len[STR_ET + e->etype]);
        SEG(2), p = put(p, secbuf, 19);
        SEG(3), p[0] = (char)('0' + e->ts % 1000 / 100), p[1] = (char)('0' + e->ts % 100 / 10),
                p[2] = (char)('0' + e->ts % 10), p += 3;
        SEG(4), p = put(p, g_str[STR_Q + e->rung], g_len[STR_Q + e->rung]);
        SEG(5), p = put_fixed(p, (int64_t)nearbyint(e->bw * 100), 100, 2);
        SEG(6), p = put_i(p, e->buf_events);
        SEG(7), p = put_fixed(p, e->stall, 1000, 3);
        SEG(8), p = put_i(p, e->errors);
        SEG(9), p = put_i(p, e->played / 1000);
        SEG(10), p = put_i(p, pos_s);
        SEG(11), p = put_fixed(p, (pos_s * 20000 + e->dur_s) / (2 * (int64_t)e->dur_s), 100, 2);
        SEG(12), p = put_i(p, e->seq);
        SEG(13), p = put_i(p, (int64_t)g_ladder[e->rung]);
        SEG(14), p = e->startup_out >= 0 ? put_i(p, e->startup_out) : put(p, NUL, 4);
        SEG(15), p = e->rebuf_out >= 0 ? put_i(p, e->rebuf_out) : put(p, NUL, 4);
        SEG(16), p = e->code >= 0 ? put(p, g_str[STR_CODE + e->code], g_len[STR_CODE + e->code]) : put(p, NUL, 4);
        SEG(17), p = e->fatal ? put(p, TRUE_, 4) : put(p, FALSE_, 5);
        SEG(18), p = e->started ? put(p, TRUE_, 4) : put(p, FALSE_, 5);
        SEG(19), p = put(p, g_str[STR_PS + e->state], g_len[STR_PS + e->state]);
        SEG(20), p = put_i(p, e->played_d);
        SEG(21), p = put_i(p, e->stall_d);
        SEG(22), p = put_i(p, (int64_t)g_ladder[e->prev_rung]);
        SEG(23);
#undef SEG
        *p++ = '\n';
        m->out_len = p - m->out;
    }
    m->offsets[m->n_ev] = m->out_len;
    return 0;
}

/* ---- the merge order */
#define RADIX_BITS 11
#define RADIX (1 << RADIX_BITS)
#define SIGN64 0x8000000000000000ULL
/* m->order = the chunk's event indexes in (ts, uid) order: an LSD radix sort of the two
 * 64-bit keys, RADIX_BITS a pass, uid's digits first, skipping the digits in which no key
 * differs from the first (a chunk's ts span a few minutes and its live uids a few hours of
 * buckets: typically 5 passes). A session's events have strictly increasing ts and uids
 * are unique, so (ts, uid) never ties: this is the one order any correct sort gives (the
 * qsort_r it replaces was GNU-only: BSD and macOS take its arguments in another order). */
static int sort_events(sim_t *m) {
    int64_t n = m->n_ev;
    if (grow((void **)&m->order, &m->cap_order, n + 1, sizeof(int64_t))) return -1;
    if (grow((void **)&m->sort_buf, &m->cap_sort, 2 * n + 2, sizeof(sort_item_t))) return -1;
    sort_item_t *a = m->sort_buf, *b = m->sort_buf + n;
    uint64_t diff[2] = {0, 0};
    for (int64_t k = 0; k < n; k++) {
        const event_t *e = &m->ev[k];
        a[k].key[0] = (uint64_t)e->uid ^ SIGN64, a[k].key[1] = (uint64_t)e->ts ^ SIGN64, a[k].idx = k;
        diff[0] |= a[k].key[0] ^ a[0].key[0], diff[1] |= a[k].key[1] ^ a[0].key[1];
    }
    int64_t count[RADIX];
    for (int w = 0; w < 2; w++) {
        for (int shift = 0; shift < 64; shift += RADIX_BITS) {
            if (!((diff[w] >> shift) & (RADIX - 1))) continue; /* every key has the same digit */
            memset(count, 0, sizeof count);
            for (int64_t k = 0; k < n; k++) count[(a[k].key[w] >> shift) & (RADIX - 1)]++;
            int64_t at = 0;
            for (int d = 0; d < RADIX; d++) {
                int64_t c = count[d];
                count[d] = at, at += c;
            }
            for (int64_t k = 0; k < n; k++) b[count[(a[k].key[w] >> shift) & (RADIX - 1)]++] = a[k];
            sort_item_t *t = a;
            a = b, b = t;
        }
    }
    for (int64_t k = 0; k < n; k++) m->order[k] = a[k].idx;
    return 0;
}

/* Runs every live session up to `until` (exclusive). Events with emit_from <= ts < emit_to
 * are kept; then they are sorted by (ts, uid) and, if `render_json`, rendered as JSON Lines.
 * Sessions that end are freed (their slots are reused by later k_add calls). Returns the
 * number of kept events, or -1 when out of memory. */
API int64_t k_advance(sim_t *m, int64_t until, int64_t emit_from, int64_t emit_to, int render_json) {
    m->n_ev = 0;
    for (int32_t i = 0; i < m->n; i++) {
        sess_t *s = &m->s[i];
        if (s->alive != 1) continue;
        while (s->te < until) {
            if (s->te >= emit_from && s->te < emit_to) {
                if (grow((void **)&m->ev, &m->cap_ev, m->n_ev + 1, sizeof(event_t))) return -1;
                event_t *e = &m->ev[m->n_ev++];
                e->ts = s->te, e->uid = s->uid, e->stall = s->stall, e->played = s->played, e->pos_ms = s->pos_ms;
                e->played_d = s->played_d, e->stall_d = s->stall_d, e->bw = s->bw;
                e->slot = i, e->etype = s->etype, e->state = s->state, e->seq = s->seq, e->rung = s->rung;
                e->prev_rung = s->prev_rung, e->buf_events = s->buf_events, e->errors = s->errors;
                e->startup_out = s->startup_out, e->rebuf_out = s->rebuf_out, e->code = s->code, e->fatal = s->fatal;
                e->started = s->started, e->dur_s = s->dur_s, e->startup = s->startup, e->vsf = s->vsf;
            }
            if (s->state >= S_ENDED) {
                s->alive = 0;
                m->ended += 1, m->ended_life += s->te + 1 - s->start, m->ended_events += s->seq + 1;
                break;
            }
            settle(s);
            decide(s);
        }
    }
    if (sort_events(m)) return -1;
    if (grow((void **)&m->slots, &m->cap_slots, m->n_ev + 1, sizeof(int32_t))) return -1;
    for (int64_t k = 0; k < m->n_ev; k++) m->slots[k] = m->ev[m->order[k]].slot;
    if (render_json && render(m)) return -1;
    /* slots of ended sessions are free once their events are rendered */
    for (int32_t i = 0; i < m->n; i++)
        if (m->s[i].alive == 0) {
            m->s[i].alive = -1;
            m->free_slots[m->n_free++] = i;
        }
    return m->n_ev;
}

API int64_t k_live(const sim_t *m) { return m->n - m->n_free; }
API const char *k_out(const sim_t *m) { return m->out; }
API const int64_t *k_offsets(const sim_t *m) { return m->offsets; }
API const int64_t *k_order(const sim_t *m) { return m->order; }
API const int32_t *k_slots(const sim_t *m) { return m->slots; }
API const event_t *k_events(const sim_t *m) { return m->ev; }
API int k_event_size(void) { return (int)sizeof(event_t); }
/* Field i of event_t (0 <= i < k_event_fields()): its name, offset, size and kind. */
API int k_event_fields(void) { return N_EVENT_FIELDS; }
API const char *k_event_field(int i, int32_t *offset, int32_t *size, int32_t *kind) {
    if (i < 0 || i >= N_EVENT_FIELDS) return NULL;
    *offset = EVENT_FIELDS[i].offset, *size = EVENT_FIELDS[i].size, *kind = EVENT_FIELDS[i].kind;
    return EVENT_FIELDS[i].name;
}
/* The schema field of template slot i (0 <= i < k_n_slots()), or NULL. */
API int k_n_slots(void) { return N_SLOTS; }
API const char *k_slot_field(int i) { return i >= 0 && i < N_SLOTS ? SLOT_FIELDS[i] : NULL; }
API void k_totals(const sim_t *m, int64_t *out) { out[0] = m->ended, out[1] = m->ended_life, out[2] = m->ended_events; }
