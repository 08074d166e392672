// check_html.js - open an `m365fwd report` HTML file in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core: no browser download)
// and check it against the `--format json` document of the same review.
//
//   node check_html.js REPORT.html REPORT.json SCREENSHOT.png [TEXT...]
//
// Checks: every section and area is present; every number that carries a
// data-path equals the JSON value at that path, and the tables have as many
// rows as the JSON lists; no console error, no page error, no network
// request besides the file itself; no script element; each TEXT (markup
// that came in a record) is shown as text. Writes a full-page screenshot.
// Prints a JSON summary; exit 0 when everything holds, 1 otherwise.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const AREAS = ['identity_access', 'data_protection', 'collaboration_sharing',
    'device_posture', 'monitoring_response'];

function resolve(doc, p) {
    let m;
    const areas = doc.exposure.areas;
    if ((m = /^exposure\.areas\.([a-z_]+)\.tags\.(.+)\.count$/.exec(p))) {
        const a = areas.find(x => x.area === m[1]);
        const t = a && a.tags.find(x => x.id === m[2]);
        return t ? t.count : undefined;
    }
    if ((m = /^exposure\.areas\.([a-z_]+)\.([a-z_]+)$/.exec(p))) {
        const a = areas.find(x => x.area === m[1]);
        return a ? a[m[2]] : undefined;
    }
    if ((m = /^checks\.([a-z0-9_]+)\.evidence$/.exec(p))) {
        const c = doc.checks.find(x => x.id === m[1]);
        return c ? c.evidence : undefined;
    }
    if ((m = /^plan\.([a-z0-9_]+)\.evidence$/.exec(p))) {
        for (const h of doc.plan.horizons) {
            const a = h.actions.find(x => x.check === m[1]);
            if (a) return a.evidence;
        }
        return undefined;
    }
    if ((m = /^coverage\.content_types\.(.+)\.(records|days)$/.exec(p))) {
        const c = doc.coverage.content_types.find(x => x.content_type === m[1]);
        return c ? c[m[2]] : undefined;
    }
    if ((m = /^tenants\.(.+)\.(records|tagged)$/.exec(p))) {
        const t = doc.tenants.find(x => x.id === m[1]);
        return t ? t[m[2]] : undefined;
    }
    if (p === 'coverage.gaps.length') return doc.coverage.gaps.length;
    let v = doc;
    for (const k of p.split('.')) v = v === undefined || v === null ? undefined : v[k];
    return v;
}

async function main() {
    const [html, json, shot, ...texts] = process.argv.slice(2);
    if (!html || !json || !shot) {
        console.error('usage: node check_html.js REPORT.html REPORT.json SCREENSHOT.png [TEXT...]');
        process.exit(2);
    }
    const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
    const url = 'file://' + path.resolve(html);
    const errors = [], consoleErrors = [], requests = [];
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update',
            '--disable-sync', '--disable-dev-shm-usage'],
    });
    try {
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
        page.on('pageerror', e => consoleErrors.push('pageerror: ' + e.message));
        page.on('request', r => { if (r.url() !== url) requests.push(r.url()); });
        page.on('dialog', d => { errors.push('a dialog opened: ' + d.message()); d.dismiss(); });
        await page.goto(url, { waitUntil: 'load' });

        const dom = await page.evaluate(() => {
            const q = s => Array.from(document.querySelectorAll(s));
            return {
                title: document.title,
                sections: q('section').map(s => s.id),
                areas: q('article.area').map(a => a.id),
                scripts: document.scripts.length,
                handlers: q('*').filter(e => Array.from(e.attributes)
                    .some(a => a.name.startsWith('on'))).length,
                numbers: q('[data-path]').map(e => [e.getAttribute('data-path'), e.textContent]),
                svgs: q('svg').length,
                text: document.body.innerText,
                rows: {
                    checks: q('table.checks tr').length - 1,
                    plan: q('table.plan tr').length - q('table.plan').length,
                    tenants: q('table.tenants tr').length - 1,
                    content_types: q('table.content-types tr').length - 1,
                    gaps: q('table.gaps tr').length - (q('table.gaps').length ? 1 : 0),
                    events: Object.fromEntries(q('article.area').map(a => [a.id.slice(5),
                        Math.max(0, a.querySelectorAll('table.events tr').length - 1)])),
                },
            };
        });
        for (const s of ['summary', 'exposure', 'checks', 'plan', 'coverage'])
            if (!dom.sections.includes(s)) errors.push('section #' + s + ' missing');
        for (const a of AREAS)
            if (!dom.areas.includes('area-' + a)) errors.push('area ' + a + ' missing');
        if (dom.scripts !== 0) errors.push(dom.scripts + ' script elements in the page');
        if (dom.handlers !== 0) errors.push(dom.handlers + ' elements with on* attributes');
        if (dom.svgs < AREAS.length + 2) errors.push('only ' + dom.svgs + ' charts');
        let checked = 0;
        for (const [p, text] of dom.numbers) {
            const want = resolve(doc, p);
            if (want === undefined) errors.push('data-path ' + p + ' is not in the JSON');
            else if (String(want) !== text.trim())
                errors.push(p + ': page shows ' + text + ', JSON has ' + want);
            else checked++;
        }
        const need = 12 + AREAS.length * 4 + doc.checks.length;
        if (checked < need) errors.push('only ' + checked + ' numbers checked, expected ' + need);
        const nActions = doc.plan.horizons.reduce((n, h) => n + h.actions.length, 0);
        const want = { checks: doc.checks.length, plan: nActions, tenants: doc.tenants.length,
            content_types: doc.coverage.content_types.length, gaps: doc.coverage.gaps.length };
        for (const k of Object.keys(want))
            if (dom.rows[k] !== want[k])
                errors.push(k + ': ' + dom.rows[k] + ' rows, JSON has ' + want[k]);
        for (const a of doc.exposure.areas)
            if (dom.rows.events[a.area] !== a.events.length)
                errors.push(a.area + ' events: ' + dom.rows.events[a.area] + ' rows, JSON has ' +
                    a.events.length);
        for (const t of texts)
            if (!dom.text.includes(t)) errors.push('text not shown as text: ' + t);
        if (!dom.title.startsWith('Microsoft 365 security and governance review'))
            errors.push('title: ' + dom.title);
        await page.screenshot({ path: shot, fullPage: true });
        // and printed: the print styles lay it out on pages without error
        await page.emulateMedia({ media: 'print' });
        const pdf = await page.pdf({ format: 'A4' });
        if (pdf.length < 10000) errors.push('printed PDF is only ' + pdf.length + ' bytes');
        if (consoleErrors.length) errors.push('console errors: ' + consoleErrors.join(' | '));
        if (requests.length) errors.push('network requests: ' + requests.join(' '));
        console.log(JSON.stringify({ ok: errors.length === 0, errors, numbers_checked: checked,
            sections: dom.sections, requests, console_errors: consoleErrors,
            pdf_bytes: pdf.length, screenshot: shot }));
    } finally {
        await browser.close();
    }
    process.exit(errors.length ? 1 : 0);
}

main().catch(e => { console.error(e && e.stack || String(e)); process.exit(3); });
