"""The ingestion routes, one module each (the route table is `leadscore.adapters.ingest.ROUTES`):

- `segment`: the Segment Tracking API (`POST /v1/{track,identify,page,screen,group,alias,batch}`);
- `pixel`: `GET /v1/pixel.gif`;
- `forms`: `POST /v1/forms/{formId}`;
- `browser`: what browsers ask for: analytics.js settings, CORS preflights and headers;
- `call`: what they share: the request's sender, bounded JSON bodies, refused input.
"""
