// app.js: lookout's web UI. Three views, all addressed by the URL fragment so that a copied URL opens
// the same view with the same filters:
//   #/                                      overview of every job
//   #/{job}/errors?q=&severity=&status=&label=&sort=&cursor=   error list of one job
//   #/{job}/errors/{key}?occ=&res=          one error (also Periskop's permalink #/{service}/errors/{key})
// The page polls the API every `?refresh=SECONDS` (default 10) and updates the current view in place,
// keeping scroll position, focus and the open occurrence. All text from the API goes through LK.h.
'use strict';

(function () {
  const LK = window.LK;
  const {h, api, enc, dec, fmtInt, timeEl, sparkline} = LK;
  const main = document.getElementById('main');
  const updatedEl = document.getElementById('updated');
  const pageParams = new URLSearchParams(location.search);
  const REFRESH_MS = Math.max(500, (Number(pageParams.get('refresh')) || 10) * 1000);
  const PAGE_SIZE = 50;
  // Search as you type: a request once typing pauses this long. A burst of keys less than 80 ms apart costs
  // one request; a slow typist costs one per key, which the server absorbs (a search over 100,000 errors
  // is a few ms of CPU in the memory store) and the UI keeps cheap: each new request aborts the one in
  // flight and only the latest one renders (load()).
  const SEARCH_DEBOUNCE_MS = 80;
  const SEVERITIES = ['error', 'warning', 'info'];
  const STATUSES = {'': 'Any status', open: 'Open (incl. regressed)', regressed: 'Regressed', resolved: 'Resolved'};
  const SORTS = {last_seen: 'Last seen', count: 'Count', first_seen: 'First seen'};

  // Render log for the browser tests' timing figures (and nothing else).
  const renders = [];
  window.__lookout = {renders};
  function rendered(what, extra) {
    renders.push(Object.assign({view: what, t: performance.now()}, extra || {}));
    if (renders.length > 500) renders.splice(0, 250);
  }

  // ---------------------------------------------------------------- routing
  function parseHash() {
    let hash = location.hash.replace(/^#/, '');
    let qs = '';
    const qi = hash.indexOf('?');
    if (qi >= 0) {
      qs = hash.slice(qi + 1);
      hash = hash.slice(0, qi);
    }
    const params = new URLSearchParams(qs);
    if (hash === '' || hash === '/') return {name: 'overview', params};
    // The key is everything after "/errors/": Periskop encodes it, but a raw '/' must work too.
    const m = /^\/([^/]+)(?:\/errors(?:\/(.*))?)?\/?$/.exec(hash) || /^\/([^/]+)\/errors\/(.+)$/.exec(hash);
    if (!m) return {name: 'notfound', params};
    const job = dec(m[1]);
    if (m[2] !== undefined && m[2] !== '') return {name: 'detail', job, key: dec(m[2]), params};
    return {name: 'list', job, params};
  }

  const jobHash = (job) => `#/${enc(job)}/errors`;
  const detailHash = (job, key) => `#/${enc(job)}/errors/${enc(key)}`;

  function withParams(base, params) {
    const qs = params.toString();
    return qs ? `${base}?${qs}` : base;
  }

  // Replace the URL without a hashchange (so typing in the search box does not rebuild the view).
  function setUrl(hash) {
    if (location.hash !== hash) history.replaceState(history.state, '', hash);
  }

  // ---------------------------------------------------------------- shared pieces
  function severityEl(sev) {
    const s = SEVERITIES.includes(sev) ? sev : 'unknown';
    return h('span', {class: `sev sev-${s}`}, sev || 'unknown');
  }

  function statusEl(st) {
    const s = ['open', 'regressed', 'resolved'].includes(st) ? st : 'unknown';
    return h('span', {class: `status status-${s}`}, st || 'unknown');
  }

  function errorBox(e, hint) {
    return h('div', {class: 'alert', role: 'alert'}, h('strong', null, 'Could not load: '), e.message,
      hint ? h('p', null, hint) : null);
  }

  function emptyState(title, ...body) {
    return h('div', {class: 'empty'}, h('h2', null, title), ...body);
  }

  function breadcrumbs(...parts) {
    const nav = h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'});
    parts.forEach((p, i) => {
      if (i) nav.append(h('span', {class: 'sep', 'aria-hidden': 'true'}, '›'));
      nav.append(p.href ? h('a', {href: p.href}, p.text) : h('span', {'aria-current': 'page'}, p.text));
    });
    return nav;
  }

  // Swap a container's children while keeping scroll position and the focused control (by data-fid).
  function swap(container, ...kids) {
    const y = window.scrollY;
    const active = document.activeElement;
    const fid = active && active.dataset ? active.dataset.fid : null;
    container.replaceChildren(...kids);
    if (fid) {
      const again = container.querySelector(`[data-fid="${CSS.escape(fid)}"]`);
      if (again) again.focus({preventScroll: true});
    }
    window.scrollTo(0, y);
  }

  function refreshRelativeTimes() {
    for (const t of main.querySelectorAll('time[datetime]')) {
      const d = new Date(t.getAttribute('datetime'));
      if (!isNaN(d)) t.textContent = LK.fmtAgo(d);
    }
  }

  // ---------------------------------------------------------------- overview
  function overviewView() {
    const body = h('div', {class: 'body'});
    const el = h('section', {class: 'view overview'}, h('h1', null, 'Jobs'), body);
    let last = null;
    return {
      el,
      async load() {
        const jobs = await api('/api/v1/jobs');
        const sig = JSON.stringify(jobs);
        if (sig === last) return refreshRelativeTimes();
        last = sig;
        swap(body, renderJobs(jobs));
        rendered('overview', {n: jobs.length});
      },
      hasData: () => last !== null,
      fail(e) {
        swap(body, errorBox(e, 'Is lookout running? The overview reads GET /api/v1/jobs.'));
      },
    };
  }

  function renderJobs(jobs) {
    if (!jobs || jobs.length === 0) {
      return emptyState('No jobs configured',
        h('p', null, 'lookout scrapes the jobs listed under ', h('code', null, 'scrape_configs'),
          ' in its configuration file, the same way Prometheus does. Each target must expose its exceptions in the Periskop format (by default at ',
          h('code', null, '/-/exceptions'), '). For example:'),
        h('pre', {class: 'code'}, 'scrape_configs:\n  - job_name: api\n    static_configs:\n      - targets: [\'10.0.0.5:8080\']\n'),
        h('p', null, 'Then reload with ', h('code', null, 'kill -HUP'), ' or ', h('code', null, 'POST /-/reload'),
          '. The ', h('a', {href: LK.url('/service-discovery')}, 'Service discovery'), ' page shows what each job discovered.'));
    }
    const table = h('table', {class: 'grid jobs'},
      h('thead', null, h('tr', null,
        h('th', {scope: 'col'}, 'Job'), h('th', {scope: 'col', class: 'num'}, 'Open'),
        h('th', {scope: 'col', class: 'num'}, 'Regressed'), h('th', {scope: 'col', class: 'num'}, 'Resolved'),
        h('th', {scope: 'col', class: 'num'}, 'Last hour'), h('th', {scope: 'col'}, 'Targets'),
        h('th', {scope: 'col'}, 'Last 24 h'))));
    const tb = h('tbody');
    for (const j of jobs) {
      const down = Number(j.targets_down) || 0, up = Number(j.targets_up) || 0, unk = Number(j.targets_unknown) || 0;
      const health = h('a', {class: 'health', href: LK.url(`/targets?scrapePool=${enc(j.job)}`),
        title: `${up} up, ${down} down, ${unk} unknown`},
      up + down + unk > 0 ? h('span', {class: `pill ${up > 0 ? 'up' : 'none'}`}, `${up} up`) : null,
      down ? h('span', {class: 'pill down'}, `${down} down`) : null,
      unk ? h('span', {class: 'pill unknown'}, `${unk} unknown`) : null,
      up + down + unk === 0 ? h('span', {class: 'pill down'}, 'no targets') : null);
      tb.append(h('tr', {class: 'job-row', 'data-job': j.job},
        h('th', {scope: 'row', 'data-label': 'Job'}, h('a', {href: jobHash(j.job), 'data-fid': `job:${j.job}`}, j.job)),
        h('td', {class: 'num', 'data-label': 'Open'}, fmtInt(j.open)),
        h('td', {class: `num ${j.regressed ? 'warn' : ''}`, 'data-label': 'Regressed'}, fmtInt(j.regressed)),
        h('td', {class: 'num', 'data-label': 'Resolved'}, fmtInt(j.resolved)),
        h('td', {class: 'num', 'data-label': 'Last hour'}, fmtInt(j.errors_last_hour)),
        h('td', {'data-label': 'Targets'}, health),
        h('td', {'data-label': 'Last 24 h'}, sparkline(j.sparkline))));
    }
    table.append(tb);
    return h('div', {class: 'scroll'}, table);
  }

  // ---------------------------------------------------------------- error list
  function listState(params) {
    const st = {
      q: params.get('q') || '',
      severity: params.getAll('severity').flatMap((s) => s.split(',')).filter((s) => SEVERITIES.includes(s)),
      status: STATUSES[params.get('status') || ''] !== undefined ? params.get('status') || '' : '',
      labels: params.getAll('label').filter((l) => l.includes('=')),
      sort: SORTS[params.get('sort')] ? params.get('sort') : 'last_seen',
      cursor: params.get('cursor') || '',
    };
    return st;
  }

  // The search box's hints: [term, what it does] (store/query.h is the reference).
  const SEARCH_SYNTAX = [
    ['is:open', 'open or regressed (is:resolved, is:regressed)'],
    ['severity:error', 'severity; lists too: severity:warning,error'],
    ['job:api', 'job name'],
    ['class:Timeout', 'class contains (case-insensitive)'],
    ['key:billing', 'aggregation key contains'],
    ['namespace:prod', 'any label seen on the error, exact value'],
    ['"connection refused"', 'an exact phrase'],
    ['-is:resolved', 'a leading - negates any term'],
  ];

  function listParams(st, forApi) {
    const p = new URLSearchParams();
    if (st.q) p.set('q', st.q);
    for (const s of st.severity) p.append('severity', s);
    if (st.status) p.set('status', st.status);
    for (const l of st.labels) p.append('label', l);
    if (st.sort !== 'last_seen' || forApi) p.set('sort', st.sort);
    if (st.cursor) p.set('cursor', st.cursor);
    return p;
  }

  const hasFilters = (st) => !!(st.q || st.severity.length || st.status || st.labels.length);

  function listView(job, params) {
    const st = listState(params);
    const prevCursors = []; // cursors of the pages before the current one (in-memory; Back uses it)
    let reqSeq = 0, last = null, searchTimer = null, inflightCtl = null;

    const search = h('input', {type: 'search', id: 'search', name: 'q', value: st.q, autocomplete: 'off',
      placeholder: 'Search: words, "a phrase", is:open, severity:error, class:…, key:…, namespace:prod, -word',
      'aria-label': 'Search errors', 'aria-describedby': 'search-error', 'data-fid': 'search'});
    // The search language (docs/api.md): each hint inserts its term into the box and searches.
    const searchError = h('p', {class: 'search-error', id: 'search-error', role: 'alert', hidden: true});
    const syntax = h('details', {class: 'syntax', id: 'search-syntax'}, h('summary', null, 'Search syntax'),
      h('ul', null, SEARCH_SYNTAX.map(([term, what]) => h('li', null,
        h('button', {type: 'button', class: 'link term', 'data-term': term, 'data-fid': `syntax:${term}`, onclick: () => {
          search.value = (search.value.trim() + ' ' + term).trim();
          clearTimeout(searchTimer);
          st.q = search.value.trim();
          changed(false);
          search.focus();
        }}, h('code', null, term)), ' ', what))));
    const sevBoxes = SEVERITIES.map((s) => h('label', {class: `chip sev-${s}`},
      h('input', {type: 'checkbox', value: s, checked: st.severity.includes(s), 'data-fid': `sev:${s}`}), s));
    const status = h('select', {id: 'status', 'aria-label': 'Status', 'data-fid': 'status'},
      Object.entries(STATUSES).map(([v, t]) => h('option', {value: v, selected: v === st.status}, t)));
    const labels = h('input', {type: 'text', id: 'labels', value: st.labels.join(' '), autocomplete: 'off',
      placeholder: 'Labels: namespace=prod instance=…', 'aria-label': 'Label filter (name=value, space separated)',
      'data-fid': 'labels'});
    const sort = h('select', {id: 'sort', 'aria-label': 'Sort by', 'data-fid': 'sort'},
      Object.entries(SORTS).map(([v, t]) => h('option', {value: v, selected: v === st.sort}, `Sort: ${t}`)));
    const clear = h('button', {type: 'button', class: 'link', id: 'clear-filters', 'data-fid': 'clear'}, 'Clear filters');
    const labelHint = h('span', {class: 'hint', role: 'status'});
    const summary = h('p', {class: 'summary', role: 'status', 'aria-live': 'polite'});
    const results = h('div', {class: 'results'});
    const pager = h('nav', {class: 'pager', 'aria-label': 'Pages'});

    const form = h('form', {class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault()},
      search, h('fieldset', {class: 'sevs'}, h('legend', {class: 'sr-only'}, 'Severity'), sevBoxes),
      status, labels, sort, clear, labelHint, searchError, syntax);

    const el = h('section', {class: 'view list'},
      breadcrumbs({text: 'Jobs', href: '#/'}, {text: job}),
      h('h1', null, 'Errors of ', h('span', {class: 'jobname'}, job)), form, summary, results, pager);

    function changed(keepCursor) {
      if (!keepCursor) {
        st.cursor = '';
        prevCursors.length = 0;
      }
      clear.hidden = !hasFilters(st);
      setUrl(withParams(jobHash(job), listParams(st, false)));
      load(false);
    }

    search.addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        if (st.q === search.value.trim()) return;
        st.q = search.value.trim();
        changed(false);
      }, SEARCH_DEBOUNCE_MS);
    });
    for (const b of sevBoxes) {
      b.querySelector('input').addEventListener('change', () => {
        st.severity = sevBoxes.map((x) => x.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
        changed(false);
      });
    }
    status.addEventListener('change', () => {
      st.status = status.value;
      changed(false);
    });
    sort.addEventListener('change', () => {
      st.sort = sort.value;
      changed(false);
    });
    function applyLabels() {
      const toks = labels.value.split(/[\s,]+/).filter(Boolean);
      const bad = toks.filter((t) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(t));
      labelHint.textContent = bad.length ? `Ignored (not name=value): ${bad.join(' ')}` : '';
      const good = toks.filter((t) => !bad.includes(t));
      if (good.join(' ') === st.labels.join(' ')) return;
      st.labels = good;
      changed(false);
    }
    labels.addEventListener('change', applyLabels);
    labels.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') applyLabels();
    });
    clear.addEventListener('click', () => {
      st.q = '';
      st.severity = [];
      st.status = '';
      st.labels = [];
      search.value = '';
      labels.value = '';
      labelHint.textContent = '';
      for (const b of sevBoxes) b.querySelector('input').checked = false;
      status.value = '';
      changed(false);
      search.focus();
    });
    clear.hidden = !hasFilters(st);

    function renderPage(data) {
      const errs = data.errors || [];
      const filtered = hasFilters(st);
      summary.textContent = `${fmtInt(data.total)} error${data.total === 1 ? '' : 's'}` +
        (filtered ? ' match' + (data.total === 1 ? 'es' : '') + ' the filters' : '') +
        (st.cursor ? ` · page ${prevCursors.length + 1}+` : '');
      if (errs.length === 0) {
        swap(results, filtered
          ? emptyState('No errors match these filters',
            h('p', null, 'Search matches words in the key, class, message, stack trace and HTTP context; all terms must match (see Search syntax above: ',
              h('code', null, 'is:open'), ', ', h('code', null, 'severity:error'), ', ', h('code', null, '-word'), '). Label filters take the form ',
              h('code', null, 'name=value'), ' of a target label (e.g. ', h('code', null, 'namespace=prod'), ').'))
          : emptyState(`No errors recorded for ${job} yet`,
            h('p', null, 'lookout has not seen an exception from this job. Check on the ',
              h('a', {href: LK.url(`/targets?scrapePool=${enc(job)}`)}, 'Targets'),
              ' page that its targets are up and that they serve the Periskop format at the job\'s ',
              h('code', null, 'metrics_path'), ' (default ', h('code', null, '/-/exceptions'), ').')));
      } else {
        swap(results, h('div', {class: 'scroll'}, errorTable(errs)));
      }
      pager.replaceChildren();
      if (st.cursor) {
        pager.append(h('button', {type: 'button', 'data-fid': 'first', onclick: () => {
          st.cursor = '';
          prevCursors.length = 0;
          changed(true);
        }}, '« First'));
      }
      if (prevCursors.length) {
        pager.append(h('button', {type: 'button', 'data-fid': 'prev', onclick: () => {
          st.cursor = prevCursors.pop();
          changed(true);
        }}, '‹ Previous'));
      }
      if (data.next_cursor) {
        pager.append(h('button', {type: 'button', id: 'next-page', 'data-fid': 'next', onclick: () => {
          prevCursors.push(st.cursor);
          st.cursor = data.next_cursor;
          changed(true);
          window.scrollTo(0, 0);
        }}, 'Next ›'));
      }
    }

    function errorTable(errs) {
      const tb = h('tbody');
      for (const e of errs) {
        tb.append(h('tr', {class: `err-row sev-row-${SEVERITIES.includes(e.severity) ? e.severity : 'unknown'}`},
          h('td', {class: 'sevcell', 'data-label': 'Severity'}, severityEl(e.severity)),
          h('td', {class: 'what', 'data-label': 'Error'},
            h('a', {class: 'key', href: detailHash(e.job || job, e.aggregation_key), 'data-fid': `key:${e.aggregation_key}`},
              e.aggregation_key),
            h('div', {class: 'cls'}, e.class),
            h('div', {class: 'msg', title: e.message}, e.message)),
          h('td', {class: 'num', 'data-label': 'Count'}, fmtInt(e.total_count)),
          h('td', {'data-label': 'Status'}, statusEl(e.status)),
          h('td', {'data-label': 'First seen'}, timeEl(e.first_seen)),
          h('td', {'data-label': 'Last seen'}, timeEl(e.last_seen)),
          h('td', {'data-label': 'Last 24 h'}, sparkline(e.sparkline))));
      }
      return h('table', {class: 'grid errors'},
        h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'Severity'), h('th', {scope: 'col'}, 'Error'),
          h('th', {scope: 'col', class: 'num'}, 'Count'), h('th', {scope: 'col'}, 'Status'),
          h('th', {scope: 'col'}, 'First seen'), h('th', {scope: 'col'}, 'Last seen'), h('th', {scope: 'col'}, 'Last 24 h'))),
        tb);
    }

    async function load(background) {
      const my = ++reqSeq;
      const p = listParams(st, true);
      p.append('job', job);
      p.set('limit', String(PAGE_SIZE));
      // A newer keystroke supersedes the request in flight: abort it so the server drops it too.
      if (inflightCtl) inflightCtl.abort();
      const ctl = (inflightCtl = new AbortController());
      let data;
      try {
        data = await api(`/api/v1/errors?${p}`, {signal: ctl.signal});
      } catch (e) {
        if (my !== reqSeq) return;
        if (e.status === 400 && e.errorType === 'bad_data' && st.q) {
          // a query the server cannot parse (unclosed quote, unknown is: value): say so at the box and
          // keep the last results
          searchError.textContent = e.message;
          searchError.hidden = false;
          rendered('list-error', {q: st.q, error: e.message});
          return;
        }
        throw e;
      }
      if (my !== reqSeq) return; // a newer request (next keystroke) is on its way
      searchError.hidden = true;
      searchError.textContent = '';
      const sig = JSON.stringify(data);
      if (background && sig === last) return refreshRelativeTimes();
      last = sig;
      renderPage(data);
      rendered('list', {q: st.q, n: (data.errors || []).length});
    }

    return {el, load, hasData: () => last !== null, fail(e) {
      swap(results, errorBox(e));
    }, focus: () => search.focus()};
  }

  // ---------------------------------------------------------------- error detail
  function detailView(job, key, params) {
    let occ = params.get('occ') || '';
    let res = ['minute', 'hour'].includes(params.get('res')) ? params.get('res') : '';
    let data = null, last = null, reqSeq = 0;
    const body = h('div', {class: 'body'});
    const el = h('section', {class: 'view detail'},
      breadcrumbs({text: 'Jobs', href: '#/'}, {text: job, href: jobHash(job)}, {text: 'Error'}), body);

    function syncUrl() {
      const p = new URLSearchParams();
      if (occ) p.set('occ', occ);
      if (res) p.set('res', res);
      setUrl(withParams(detailHash(job, key), p));
    }

    async function load(background) {
      const my = ++reqSeq;
      const q = new URLSearchParams({samples: '100'});
      if (res) q.set('resolution', res);
      let d;
      try {
        d = await api(`${LK.errorPath(job, key)}?${q}`);
      } catch (e) {
        if (e.status === 404 && my === reqSeq) {
          data = null;
          last = 'missing';
          swap(body, emptyState('Error not found',
            h('p', null, 'No error with key ', h('code', null, key), ' in job ', h('code', null, job),
              '. It may have been deleted, or not been scraped yet. '),
            h('p', null, h('a', {href: jobHash(job)}, `All errors of ${job}`))));
          rendered('detail', {key, missing: true});
          return;
        }
        throw e;
      }
      if (my !== reqSeq) return;
      const sig = JSON.stringify(d);
      if (background && sig === last) return refreshRelativeTimes();
      last = sig;
      data = d;
      render();
      rendered('detail', {key});
    }

    async function act(verb, btn) {
      btn.disabled = true;
      try {
        await api(`${LK.errorPath(job, key)}/${verb}`, {method: 'POST'});
        await load(false);
        updated(true);
      } catch (e) {
        btn.disabled = false;
        updated(false, e);
      }
    }

    // error_relabel_configs applied to this key, step by step (GET /api/v1/errors/relabel_steps), loaded
    // when first opened; the open state and the answer survive the periodic re-render.
    let stepsOpen = false, steps = null;
    function relabelStepsEl() {
      const box = h('div', {class: 'steps'});
      const fill = () => {
        if (!steps) return;
        if (steps.error) return box.replaceChildren(errorBox(steps.error));
        const list = steps.steps || [];
        if (!list.length) return box.replaceChildren(h('p', {class: 'muted'}, 'This job has no error_relabel_configs.'));
        const r = steps.result || {};
        box.replaceChildren(
          h('ol', null, list.map((st) => {
            const ru = st.rule || {}, out = st.output || {};
            return h('li', {class: st.keep ? 'kept' : 'dropped'},
              h('code', null, `${ru.action}${ru.source_labels ? ' [' + ru.source_labels.join(', ') + ']' : ''} =~ ${ru.regex}` +
                (ru.target_label ? ` → ${ru.target_label} = ${ru.replacement}` : '')),
              ' ', st.keep ? h('span', {class: 'muted'}, `key ${out.__aggregation_key__}, severity ${out.__severity__}`)
                : h('strong', null, 'dropped'));
          })),
          h('p', {class: 'steps-result'}, r.dropped ? `Result: dropped (${r.reason}).`
            : `Result: key ${r.aggregation_key}, severity ${r.severity}.`));
      };
      const det = h('details', {class: 'card', id: 'relabel-steps', open: stepsOpen},
        h('summary', null, h('h2', null, 'error_relabel_configs steps')), box);
      det.addEventListener('toggle', async () => {
        stepsOpen = det.open;
        if (!det.open || steps) return fill();
        try {
          steps = await api(`/api/v1/errors/relabel_steps?${new URLSearchParams({job, key})}`);
        } catch (e) {
          steps = {error: e};
        }
        fill();
        rendered('relabel-steps', {n: (steps.steps || []).length});
      });
      fill();
      return det;
    }

    function render() {
      const d = data;
      const samples = d.samples || [];
      let idx = samples.findIndex((s) => s.uuid === occ);
      if (idx < 0) idx = 0;
      const resolved = d.status === 'resolved';
      const action = h('button', {type: 'button', id: resolved ? 'reopen' : 'resolve',
        class: resolved ? 'btn' : 'btn primary', 'data-fid': 'action'}, resolved ? 'Re-open' : 'Resolve');
      action.addEventListener('click', () => act(resolved ? 'reopen' : 'resolve', action));

      const meta = h('dl', {class: 'meta'},
        h('div', null, h('dt', null, 'Status'), h('dd', {id: 'status-value'}, statusEl(d.status))),
        h('div', null, h('dt', null, 'Severity'), h('dd', null, severityEl(d.severity))),
        h('div', null, h('dt', null, 'Count'), h('dd', {id: 'count-value'}, fmtInt(d.total_count))),
        h('div', null, h('dt', null, 'First seen'), h('dd', null, timeEl(d.first_seen))),
        h('div', null, h('dt', null, 'Last seen'), h('dd', null, timeEl(d.last_seen))),
        d.resolved_at ? h('div', null, h('dt', null, 'Resolved'), h('dd', null, timeEl(d.resolved_at),
          d.resolved_count !== null && d.resolved_count !== undefined ? ` at count ${fmtInt(d.resolved_count)}` : '')) : null);

      const resBtns = h('div', {class: 'seg', role: 'group', 'aria-label': 'Resolution'},
        ['minute', 'hour'].map((r) => h('button', {type: 'button', 'aria-pressed': String((d.series && d.series.resolution) === r),
          'data-fid': `res:${r}`, onclick: () => {
            res = r;
            syncUrl();
            load(false).catch((e) => updated(false, e));
          }}, `per ${r}`)));

      const labelsSeen = d.labels_seen || [];
      const names = [...new Set(labelsSeen.flatMap((l) => Object.keys(l || {})))].sort((a, b) =>
        (a === 'job' ? -1 : b === 'job' ? 1 : a === 'instance' ? -1 : b === 'instance' ? 1 : a.localeCompare(b)));
      const labelsTable = labelsSeen.length === 0
        ? h('p', {class: 'muted'}, 'No target labels recorded.')
        : h('div', {class: 'scroll'}, h('table', {class: 'grid labels'},
          h('thead', null, h('tr', null, names.map((n) => h('th', {scope: 'col'}, n)))),
          h('tbody', null, labelsSeen.map((l) => h('tr', null, names.map((n) => h('td', {'data-label': n},
            l && l[n] !== undefined ? l[n] : '')))))));

      const occBox = h('div', {class: 'occurrence'});
      const pagerText = h('span', {class: 'pos', 'aria-live': 'polite'});
      const newer = h('button', {type: 'button', id: 'occ-newer', 'data-fid': 'newer', 'aria-label': 'Newer occurrence'}, '‹ Newer');
      const older = h('button', {type: 'button', id: 'occ-older', 'data-fid': 'older', 'aria-label': 'Older occurrence'}, 'Older ›');
      function showOcc(i) {
        idx = i;
        occ = samples[i] ? samples[i].uuid : '';
        pagerText.textContent = samples.length ? `${i + 1} of ${samples.length}` : '0 of 0';
        newer.disabled = i <= 0;
        older.disabled = i >= samples.length - 1;
        occBox.replaceChildren(samples[i] ? occurrenceEl(samples[i]) :
          h('p', {class: 'muted'}, 'No occurrences stored for this error.'));
      }
      newer.addEventListener('click', () => {
        showOcc(idx - 1);
        syncUrl();
      });
      older.addEventListener('click', () => {
        showOcc(idx + 1);
        syncUrl();
      });
      showOcc(idx);

      swap(body,
        h('header', {class: 'detail-head'},
          h('div', null, h('p', {class: 'cls big'}, d.class), h('h1', {class: 'key'}, d.aggregation_key),
            h('p', {class: 'msg'}, d.message)),
          h('div', {class: 'actions'}, action)),
        meta,
        h('section', {class: 'card'}, h('div', {class: 'card-head'}, h('h2', null, 'Occurrences over time'), resBtns),
          LK.seriesChart(d.series || {}, {width: Math.max(280, Math.round(main.clientWidth) - 60)})),
        h('section', {class: 'card'}, h('h2', null, `Reported by (${labelsSeen.length})`), labelsTable),
        relabelStepsEl(),
        h('section', {class: 'card', id: 'occurrences'},
          h('div', {class: 'card-head'}, h('h2', null, 'Occurrences (newest first)'),
            h('div', {class: 'occ-pager'}, newer, pagerText, older)),
          occBox));
    }

    return {el, load, hasData: () => last !== null, fail(e) {
      swap(body, errorBox(e));
    }, resize() {
      if (data) render();
    }, keydown(e) {
      const b = e.key === 'ArrowLeft' || e.key === 'k' ? document.getElementById('occ-newer')
        : e.key === 'ArrowRight' || e.key === 'j' ? document.getElementById('occ-older') : null;
      if (b && !b.disabled) {
        b.click();
        return true;
      }
      return false;
    }};
  }

  function errorBlock(err, depth) {
    if (!err) return null;
    const stack = Array.isArray(err.stacktrace) ? err.stacktrace : [];
    return h('div', {class: depth ? 'cause' : 'exception'},
      h('p', {class: 'exc-head'}, depth ? h('span', {class: 'caused'}, 'Caused by ') : null,
        h('span', {class: 'cls'}, err.class || '(no class)'), ': ', h('span', {class: 'msg'}, err.message || '')),
      stack.length ? h('pre', {class: 'stack', tabindex: 0}, stack.join('\n')) : null);
  }

  function occurrenceEl(s) {
    const blocks = [];
    let e = s.error, depth = 0;
    while (e && depth < 20) {
      blocks.push(errorBlock(e, depth));
      e = e.cause;
      depth++;
    }
    const http = s.http_context;
    let httpEl = null;
    if (http) {
      const headers = http.request_headers || {};
      const names = Object.keys(headers).sort();
      const curl = LK.curlCommand(http);
      const curlPre = h('pre', {class: 'curl', tabindex: 0}, curl);
      const copyBtn = h('button', {type: 'button', class: 'btn small', 'data-fid': 'copy-curl'}, 'Copy');
      copyBtn.addEventListener('click', () => copyText(curl, curlPre, copyBtn));
      httpEl = h('section', {class: 'http'}, h('h3', null, 'HTTP request'),
        h('p', {class: 'reqline'}, h('span', {class: 'method'}, http.request_method || ''), ' ',
          h('span', {class: 'url'}, http.request_url || '')),
        names.length ? h('div', {class: 'scroll'}, h('table', {class: 'grid headers'},
          h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'Header'), h('th', {scope: 'col'}, 'Value'))),
          h('tbody', null, names.map((n) => h('tr', null, h('td', null, n),
            h('td', null, LK.sensitiveHeader(n) ? h('span', {class: 'masked', title: 'masked: credentials'}, LK.MASK) : headers[n]))))))
          : h('p', {class: 'muted'}, 'No headers.'),
        http.request_body ? [h('h4', null, 'Body'), h('pre', {class: 'body', tabindex: 0}, http.request_body)] : null,
        h('div', {class: 'curl-head'}, h('h4', null, 'Reproduce with curl'), copyBtn,
          h('span', {class: 'hint'}, 'credentials masked')),
        curlPre);
    }
    return h('article', {class: 'occ', 'data-uuid': s.uuid || ''},
      h('p', {class: 'occ-meta'}, timeEl(s.timestamp), ' · ', severityEl(s.severity), ' · ',
        h('span', {class: 'uuid'}, s.uuid || '')),
      blocks, httpEl);
  }

  async function copyText(text, pre, btn) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      // Plain HTTP on a non-local host has no clipboard API: select the text for Ctrl-C instead.
      const r = document.createRange();
      r.selectNodeContents(pre);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      btn.textContent = 'Selected: press Ctrl-C';
      return;
    }
    btn.textContent = 'Copied';
    setTimeout(() => (btn.textContent = 'Copy'), 1500);
  }

  // ---------------------------------------------------------------- app shell
  let view = null, inflight = false;

  function updated(ok, err) {
    const now = new Date();
    updatedEl.classList.toggle('bad', !ok);
    updatedEl.title = `Refreshes every ${REFRESH_MS / 1000}s`;
    updatedEl.textContent = ok ? `Updated ${LK.fmtAbs(now).slice(11)}` : `Update failed (${err.message}); retrying`;
    updatedEl.dataset.at = String(now.getTime());
  }

  async function refresh(background) {
    const v = view;
    if (!v || (background && inflight)) return;
    inflight = true;
    try {
      await v.load(background);
      if (v === view) updated(true);
    } catch (e) {
      if (v !== view) return;
      updated(false, e);
      if (!background || !v.hasData()) v.fail(e);
    } finally {
      inflight = false;
    }
  }

  function route() {
    const r = parseHash();
    if (r.name === 'list') view = listView(r.job, r.params);
    else if (r.name === 'detail') view = detailView(r.job, r.key, r.params);
    else view = overviewView();
    main.replaceChildren(view.el);
    document.title = r.name === 'overview' || r.name === 'notfound' ? 'lookout'
      : r.name === 'list' ? `${r.job} · lookout` : `${r.key} · ${r.job} · lookout`;
    for (const a of document.querySelectorAll('header nav a')) {
      a.toggleAttribute('aria-current', a.getAttribute('href') === '#/');
    }
    window.scrollTo(0, 0);
    refresh(false);
  }

  window.addEventListener('hashchange', route);
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => view && view.resize && view.resize(), 150);
  });
  document.getElementById('refresh-now').addEventListener('click', () => refresh(false));
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typing = t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA');
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === '/' && view && view.focus) {
      e.preventDefault();
      view.focus();
    } else if (e.key === 'r') {
      refresh(false);
    } else if (view && view.keydown && t.tagName !== 'svg' && view.keydown(e)) {
      e.preventDefault();
    }
  });
  setInterval(() => {
    if (!document.hidden) refresh(true);
  }, REFRESH_MS);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh(true);
  });
  route();
})();
