import cf from 'cloudfront';

// edgefill viewer request (CloudFront Functions, cloudfront-js-2.0): sends each viewer to
// the bucket of its region, with the full origin behind it, as an origin group built per
// request. OAC signs the request for whichever S3 origin of the distribution is chosen,
// which an origin redirect made by Lambda@Edge cannot do.
//
// This file is the body of an Fn::Sub in template.yaml (`make function` copies it there):
// its only placeholders are the three string literals below, and it holds no other
// dollar-brace. shared/edge_routing.py renders it the same way for the lab and the tests.
//   ROUTES                "<region>:<CC>,<CC>;<region>:<CC>" (viewer country -> region)
//   DEFAULT_REGION        the region of an unknown, missing or unmapped country
//   FAILOVER_STATUS_CODES "403,404,500,502,503,504" (the static group's codes)
// Any bad configuration leaves the distribution's static origin group (group-<Region1>)
// in place: a viewer is always served, at worst from Region1's bucket, never refused.
var ROUTES = '${Routes}';
var DEFAULT_REGION = '${DefaultRegion}';
var FAILOVER_STATUS_CODES = '${FailoverStatusCodes}';

var REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$/;
var COUNTRY = /^[A-Z]{2}$/;
// The codes CloudFront accepts as an origin group's failover criteria.
var FAILOVER_CODES_ALLOWED = [400, 403, 404, 416, 500, 502, 503, 504];

// The configuration, checked once per function instance: null when any part is bad.
var config;

function parseRoutes(text) {
    var routes = {};
    var seenRegions = {};
    if (text === '') {
        return routes;
    }
    var entries = text.split(';');
    for (var i = 0; i < entries.length; i++) {
        var parts = entries[i].split(':');
        if (parts.length !== 2 || !REGION.test(parts[0]) || seenRegions[parts[0]]) {
            return null;
        }
        seenRegions[parts[0]] = true;
        var countries = parts[1].split(',');
        for (var j = 0; j < countries.length; j++) {
            var country = countries[j];
            if (!COUNTRY.test(country) || Object.prototype.hasOwnProperty.call(routes, country)) {
                return null;
            }
            routes[country] = parts[0];
        }
    }
    return routes;
}

function parseStatusCodes(text) {
    var codes = [];
    var items = text.split(',');
    for (var i = 0; i < items.length; i++) {
        var code = Number(items[i]);
        if (!/^[0-9]{3}$/.test(items[i]) || FAILOVER_CODES_ALLOWED.indexOf(code) < 0
            || codes.indexOf(code) >= 0) {
            return null;
        }
        codes.push(code);
    }
    return codes;
}

function loadConfig() {
    var routes = parseRoutes(ROUTES);
    var statusCodes = parseStatusCodes(FAILOVER_STATUS_CODES);
    if (routes === null || statusCodes === null || !REGION.test(DEFAULT_REGION)) {
        return null;
    }
    return { routes: routes, defaultRegion: DEFAULT_REGION, statusCodes: statusCodes };
}

// The viewer's country as CloudFront gives it (an ISO 3166-1 alpha-2 code), else null.
// CloudFront adds the header only when a cache or origin request policy names it.
function viewerCountry(request) {
    var header = request.headers && request.headers['cloudfront-viewer-country'];
    var value = header && header.value;
    return typeof value === 'string' && COUNTRY.test(value) ? value : null;
}

function regionOf(country, settings) {
    if (country !== null && Object.prototype.hasOwnProperty.call(settings.routes, country)) {
        return settings.routes[country];
    }
    return settings.defaultRegion;
}

function handler(event) {
    var request = event.request;
    try {
        if (config === undefined) {
            config = loadConfig();
        }
        if (config === null) {
            return request;
        }
        var region = regionOf(viewerCountry(request), config);
        cf.createRequestOriginGroup({
            originIds: ['bucket-' + region, 'full-' + region],
            failoverCriteria: { statusCodes: config.statusCodes.slice() }
        });
    } catch (e) {
        // Never fail a viewer: the static origin group still serves the request.
    }
    return request;
}
